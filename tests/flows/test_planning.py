"""Flow generation: the rules planner on the labelled requests, the generate endpoint, and the LLM planner against a
fake OpenAI-compatible server (valid, malformed, schema-violating, slow and rate-limited answers)."""

import pytest
from django.test import override_settings

from apps.flows import services
from apps.flows.models import Flow, FlowRequest
from apps.flows.planning.catalogue import Catalogue
from apps.integrations.connectors import connector_specs
from bench.planner import evaluate, load_cases
from tests.fakes.openai_server import FakeOpenAI
from tests.runs.flows import make_request

pytestmark = pytest.mark.django_db


def test_rules_planner_is_at_least_90_percent_exact_on_the_labelled_requests():
    report = evaluate(load_cases(), Catalogue.from_specs(connector_specs()))

    assert report.errors_correct == report.errors_expected, report.failures
    assert report.accuracy >= 0.9, report.failures


def test_generate_plans_saves_and_links_the_flow(api, owner):
    flow_request = make_request(
        owner, "Get Zendesk ticket 123, summarize it, then add an internal note with the summary."
    )

    response = api.get(f"/api/v1/flows/generate?flow_request_id={flow_request.id}")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["planner"] == "rules"
    assert [op["name"] for op in body["task_operations"]] == [
        "Get Zendesk Ticket",
        "Summarize Text",
        "Add Zendesk Internal Note",
    ]
    assert [(d["source_task_operation"], d["target_task_operation"]) for d in body["dependencies"]] == [(0, 1), (1, 2)]
    assert body["task_operations"][0]["parameters"] == {"ticket_id": 123}
    assert body["task_operations"][2]["parameters"]["body"] == "{{ steps.1.result.summary }}"
    flow_request.refresh_from_db()
    assert str(flow_request.flow_id) == body["id"]


def test_generate_also_answers_post_and_reports_conditions(api, owner):
    flow_request = make_request(owner, "If the ticket is about billing, tag ticket 55 as billing.")

    body = api.post(f"/api/v1/flows/generate?flow_request_id={flow_request.id}").json()

    assert [op["name"] for op in body["task_operations"]] == ["Update Zendesk Ticket"]
    assert body["task_operations"][0]["parameters"] == {"ticket_id": 55, "tags": ["billing"]}
    assert "If the ticket is about billing" in body["planning_notes"][0]


def test_nothing_fits_is_422_naming_the_clause_and_saves_nothing(api, owner):
    flow_request = make_request(owner, "Summarize the text. Then order a pizza for the team.")

    response = api.get(f"/api/v1/flows/generate?flow_request_id={flow_request.id}")

    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["flow_request", "request_instructions"]
    assert "order a pizza for the team" in problem["msg"]
    assert not Flow.objects.exists()


def test_a_required_parameter_nothing_provides_is_422(api, owner):
    flow_request = make_request(owner, "Post a message to Slack.")

    response = api.get(f"/api/v1/flows/generate?flow_request_id={flow_request.id}")

    assert response.status_code == 422
    assert "'channel'" in response.json()["detail"][0]["msg"]


def test_request_metadata_becomes_bindings(api, owner):
    flow_request = make_request(
        owner, "Summarize the description and add it as an internal note.", {"ticket_id": 9, "description": "x"}
    )

    body = api.get(f"/api/v1/flows/generate?flow_request_id={flow_request.id}").json()

    summarize, note = body["task_operations"]
    assert summarize["parameters"]["text"] == "{{ request.metadata.description }}"
    assert note["parameters"]["ticket_id"] == "{{ request.metadata.ticket_id }}"


def test_generate_needs_a_known_request_and_the_write_scope(api, owner, outsider_api, make_client):
    flow_request = make_request(owner, "List my Trello boards.")

    assert api.get("/api/v1/flows/generate?flow_request_id=00000000-0000-0000-0000-000000000000").status_code == 404
    assert outsider_api.get(f"/api/v1/flows/generate?flow_request_id={flow_request.id}").status_code == 404
    assert (
        make_client(owner, scopes=("read",))
        .get(f"/api/v1/flows/generate?flow_request_id={flow_request.id}")
        .status_code
        == 403
    )
    assert api.get("/api/v1/flows/generate").status_code == 422


def _changing_the_request_while_planning(monkeypatch, change):
    """The planner does ``change(flow_request)`` to the stored request (another client's edit) before it answers."""
    real = services.plan_request

    def plan(flow_request, catalogue, **kwargs):
        change(flow_request)
        return real(flow_request, catalogue, **kwargs)

    monkeypatch.setattr(services, "plan_request", plan)


def test_a_request_edited_while_it_was_planned_is_409_and_saves_nothing(api, owner, monkeypatch):
    """Planning runs with no transaction open (the model may take seconds): what it planned from is checked again
    under the request's lock before the flow is saved."""
    flow_request = make_request(owner, "Get Zendesk ticket 123 and summarize it.")
    _changing_the_request_while_planning(
        monkeypatch,
        lambda request: FlowRequest.objects.filter(id=request.id).update(request_instructions="List my Trello boards."),
    )

    response = api.get(f"/api/v1/flows/generate?flow_request_id={flow_request.id}")

    assert response.status_code == 409, response.content
    assert response.json()["code"] == "flow_request_changed"
    assert not Flow.objects.exists()
    flow_request.refresh_from_db()
    assert flow_request.flow_id is None


def test_a_request_deleted_while_it_was_planned_is_404(api, owner, monkeypatch):
    flow_request = make_request(owner, "Get Zendesk ticket 123 and summarize it.")
    _changing_the_request_while_planning(
        monkeypatch, lambda request: FlowRequest.objects.filter(id=request.id).delete()
    )

    response = api.get(f"/api/v1/flows/generate?flow_request_id={flow_request.id}")

    assert response.status_code == 404, response.content
    assert response.json() == {"detail": "Flow request not found.", "code": "not_found"}
    assert not Flow.objects.exists()


def test_a_save_that_changes_nothing_planning_reads_is_no_conflict(api, owner, monkeypatch):
    """Only what planning reads is compared: the request saved meanwhile with the same contents (another generate
    linking it, for one) is generated as usual."""
    flow_request = make_request(owner, "Get Zendesk ticket 123 and summarize it.")
    _changing_the_request_while_planning(
        monkeypatch, lambda request: FlowRequest.objects.filter(id=request.id).update(modified_by_email="x@example.com")
    )

    response = api.get(f"/api/v1/flows/generate?flow_request_id={flow_request.id}")

    assert response.status_code == 200, response.content
    flow_request.refresh_from_db()
    assert str(flow_request.flow_id) == response.json()["id"]


# --- the LLM planner ---------------------------------------------------------------------------------------------

LLM_PLAN = {
    "name": "Summarise and notify",
    "task_operations": [
        {"index": 0, "task_name": "Summarize Text", "instruction": "Summarise", "parameters": {"text": "A. B. C."}},
        {
            "index": 1,
            "task_name": "Send Notification",
            "instruction": "Notify Ann",
            "parameters": {"recipient": "ann@example.com", "message": "{{ steps.0.result.summary }}"},
        },
    ],
    "dependencies": [{"source_task_operation": 0, "target_task_operation": 1}],
    "notes": [],
}


@pytest.fixture
def fake_openai():
    server = FakeOpenAI()
    with override_settings(
        NEENA_PLANNER="llm",
        NEENA_LLM_BASE_URL=server.base_url,
        NEENA_LLM_MODEL="fake-model",
        NEENA_LLM_API_KEY="sk-test",
        NEENA_LLM_TIMEOUT_SECONDS=2,
        NEENA_LLM_MAX_RETRIES=1,
    ):
        yield server
    server.stop()


def _generate(api, owner, text='Summarize "A. B. C." and notify ann@example.com.'):
    flow_request = make_request(owner, text)
    return api.get(f"/api/v1/flows/generate?flow_request_id={flow_request.id}")


def test_llm_planner_uses_the_models_plan(api, owner, fake_openai):
    fake_openai.answer(LLM_PLAN)

    body = _generate(api, owner).json()

    assert body["planner"] == "llm"
    assert [op["name"] for op in body["task_operations"]] == ["Summarize Text", "Send Notification"]
    (request,) = fake_openai.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert {name.lower(): value for name, value in request.headers.items()}["authorization"] == "Bearer sk-test"
    assert request.body["model"] == "fake-model"
    assert request.body["response_format"] == {"type": "json_object"}
    assert "Send Notification" in request.body["messages"][0]["content"]


def test_llm_planner_feeds_back_malformed_and_invalid_answers(api, owner, fake_openai):
    invalid = {**LLM_PLAN, "task_operations": [{**LLM_PLAN["task_operations"][0], "task_name": "Teleport"}]}
    fake_openai.answer("this is not JSON")
    fake_openai.answer(invalid)
    fake_openai.answer(LLM_PLAN)

    body = _generate(api, owner).json()

    assert body["planner"] == "llm"
    assert len(fake_openai.requests) == 3
    second, third = fake_openai.requests[1].body["messages"], fake_openai.requests[2].body["messages"]
    assert "not JSON" in second[-1]["content"]
    assert "unknown task_name 'Teleport'" in third[-1]["content"]


def test_llm_planner_is_told_of_an_output_the_step_does_not_declare(api, owner, fake_openai):
    wrong_output = {
        **LLM_PLAN,
        "task_operations": [
            LLM_PLAN["task_operations"][0],
            {
                **LLM_PLAN["task_operations"][1],
                "parameters": {"recipient": "ann@example.com", "message": "{{ steps.0.result.text }}"},
            },
        ],
    }
    fake_openai.answer(wrong_output)
    fake_openai.answer(LLM_PLAN)

    body = _generate(api, owner).json()

    assert body["planner"] == "llm"
    assert body["task_operations"][1]["parameters"]["message"] == "{{ steps.0.result.summary }}"
    correction = fake_openai.requests[1].body["messages"][-1]["content"]
    assert "task_operations[1].parameters.message: step 0 outputs only summary, not 'text'." in correction


def test_llm_planner_falls_back_to_rules_after_two_corrections(api, owner, fake_openai):
    for _ in range(3):
        fake_openai.answer({"name": "x", "task_operations": [], "dependencies": []})

    body = _generate(api, owner).json()

    assert body["planner"] == "rules"
    assert "rules planner" in body["planning_notes"][-1]
    assert len(fake_openai.requests) == 3


def test_llm_planner_falls_back_to_rules_on_timeout(api, owner, fake_openai):
    fake_openai.answer(LLM_PLAN, delay=3)
    fake_openai.answer(LLM_PLAN, delay=3)

    body = _generate(api, owner).json()

    assert body["planner"] == "rules"
    assert "could not be reached" in body["planning_notes"][-1]


def test_llm_planner_waits_out_a_429_with_retry_after(api, owner, fake_openai):
    fake_openai.answer("slow down", status=429, headers={"Retry-After": "1"})
    fake_openai.answer(LLM_PLAN)

    body = _generate(api, owner).json()

    assert body["planner"] == "llm"
    assert len(fake_openai.requests) == 2


def test_llm_planner_falls_back_when_nothing_listens(api, owner):
    with override_settings(
        NEENA_PLANNER="llm", NEENA_LLM_BASE_URL="http://127.0.0.1:9/v1", NEENA_LLM_MODEL="m", NEENA_LLM_MAX_RETRIES=0
    ):
        body = _generate(api, owner).json()

    assert body["planner"] == "rules"


@pytest.mark.parametrize(
    ("request_text", "task", "parameters"),
    [
        (
            'Ask Perplexity "what is the capital of Peru".',
            "Ask Perplexity",
            {"question": "what is the capital of Peru"},
        ),
        (
            'Create a Jira issue in project OPS titled "Disk full".',
            "Create Jira Issue",
            {"project_key": "OPS", "summary": "Disk full"},
        ),
        (
            "Transition Jira issue OPS-12 to Done.",
            "Transition Jira Issue",
            {"issue_key": "OPS-12", "transition": "Done"},
        ),
        ("Mark ticket 91 as solved.", "Update Zendesk Ticket", {"ticket_id": 91, "status": "solved"}),
        ("Fetch https://example.com/status.", "HTTP GET Request", {"url": "https://example.com/status"}),
        (
            'Send an email to bob@example.com with subject "Hi" saying "Welcome".',
            "Send Gmail Message",
            {"to": "bob@example.com", "subject": "Hi", "body": "Welcome"},
        ),
    ],
)
def test_hints_become_bindings_for_every_integration(request_text, task, parameters):
    from apps.flows.planning.rules import plan

    draft = plan(
        instructions=request_text, name="", metadata_keys=set(), catalogue=Catalogue.from_specs(connector_specs())
    )

    assert [(step.entry.task_name, step.parameters) for step in draft.steps] == [(task, parameters)]
