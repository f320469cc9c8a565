"""The ``llm`` connector against the fake OpenAI-compatible server on 127.0.0.1, and once through the engine."""

import socket
import uuid

import pytest
from django.test import override_settings

from apps.accounts.models import Organization
from apps.credentials.services.credentials import credential_upsert
from apps.integrations.connectors import llm as connector
from apps.integrations.connectors.llm import draft_reply, generate_text, llm_classify_text, llm_summarize_text
from apps.integrations.execution import CredentialAccess, TaskContext, TaskError, TransientTaskError
from apps.runs.models import FlowRun, TaskRun
from apps.runs.services.run_creation import flow_execute
from apps.runs.services.step_execution import task_run_execute
from tests.fakes.openai_server import FakeOpenAI
from tests.integrations.egress_helpers import rebinding_resolver
from tests.runs.flows import make_flow, make_request, set_policy, step

API_KEY = "sk-test-123"


@pytest.fixture(scope="module")
def shared_model():
    fake = FakeOpenAI()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _model_server_allow_listed(settings):
    """The fake model server is on 127.0.0.1 and a credential's ``base_url`` is a user's choice: it is reachable
    because 127.0.0.1 is allow-listed, as an organization's model server on the local network would be. The address
    tests below empty the allow-list again."""
    settings.NEENA_HTTP_ALLOWLIST = ["127.0.0.1"]


@pytest.fixture
def model(shared_model):
    """The module's fake server, with no queued answers and no recorded requests."""
    shared_model.answers.clear()
    shared_model.requests.clear()
    return shared_model


def _context(model: FakeOpenAI | None, *, time_limit: float = 10.0, **config) -> TaskContext:
    if model is not None:
        config = {"base_url": model.base_url, "model": "test-model", **config}
    return TaskContext(
        organization_id=uuid.uuid4(),
        flow_run_id=uuid.uuid4(),
        flow_request_id=uuid.uuid4(),
        task_run_id=uuid.uuid4(),
        idempotency_key="step:0",
        integration_entity=None,
        credential=CredentialAccess(credential_id=uuid.uuid4(), secrets={"api_key": API_KEY}, config=config),
        time_limit_seconds=time_limit,
    )


def _checked_request(model: FakeOpenAI, index: int = 0, *, model_name: str = "test-model"):
    """The request at ``index``, after checking what every request must carry: the path, key and model."""
    received = model.requests[index]
    assert (received.method, received.path) == ("POST", "/v1/chat/completions")
    headers = {name.lower(): value for name, value in received.headers.items()}
    assert headers["authorization"] == f"Bearer {API_KEY}"
    assert received.body["model"] == model_name
    return received


# --- Tasks ------------------------------------------------------------------------------------------------------


def test_generate_text_sends_the_prompt_and_system(model):
    model.answer("  Meet the Aeropress: coffee in a minute.  ")

    outputs = generate_text(_context(model), prompt="Describe the Aeropress.", system="You write ad copy.")

    assert outputs == {"text": "Meet the Aeropress: coffee in a minute."}
    assert _checked_request(model).body["messages"] == [
        {"role": "system", "content": "You write ad copy."},
        {"role": "user", "content": "Describe the Aeropress."},
    ]


def test_generate_text_without_system_sends_only_the_prompt(model):
    model.answer("Hi.")

    generate_text(_context(model), prompt="Say hi.")

    assert _checked_request(model).body["messages"] == [{"role": "user", "content": "Say hi."}]


def test_classify_offers_the_labels_and_returns_one(model):
    model.answer("Billing.")

    outputs = llm_classify_text(_context(model), text="I was charged twice.", labels=["billing", "bug", "question"])

    assert outputs == {"label": "billing"}
    request = _checked_request(model)
    system, user = request.body["messages"]
    assert system["role"] == "system"
    assert "- billing\n- bug\n- question" in system["content"]
    assert user == {"role": "user", "content": "I was charged twice."}
    assert request.body["temperature"] == 0


def test_classify_corrects_an_answer_outside_the_labels_once(model):
    model.answer("refund")
    model.answer("The label is bug")

    outputs = llm_classify_text(_context(model), text="It crashes.", labels=["billing", "bug"])

    assert outputs == {"label": "bug"}
    second = _checked_request(model, 1)
    assert second.body["messages"][2:] == [
        {"role": "assistant", "content": "refund"},
        {"role": "user", "content": "That is not one of the labels. Answer with exactly one of: billing, bug."},
    ]


def test_classify_fails_after_a_second_miss(model):
    model.answer("refund")
    model.answer("billing or bug")  # names two labels: not an answer

    with pytest.raises(TaskError, match="not one of the labels billing, bug") as failed:
        llm_classify_text(_context(model), text="It crashes.", labels=["billing", "bug"])

    assert not isinstance(failed.value, TransientTaskError)
    assert len(model.requests) == 2


def test_classify_needs_labels(model):
    with pytest.raises(TaskError, match="at least one label"):
        llm_classify_text(_context(model), text="x", labels=[])

    assert model.requests == []


def test_summarize_asks_for_the_sentence_limit(model):
    model.answer("The payment service failed and recovered.")

    outputs = llm_summarize_text(_context(model), text="The payment service failed. It recovered.", max_sentences=1)

    assert outputs == {"summary": "The payment service failed and recovered."}
    user = _checked_request(model).body["messages"][1]
    assert user["content"] == "Summarize this text in at most 1 sentence:\n\nThe payment service failed. It recovered."


def test_draft_reply_includes_the_instructions(model):
    model.answer("Thanks for your patience, your refund is on its way.")

    outputs = draft_reply(_context(model), message="Where is my refund?", instructions="Be warm; it was sent today.")

    assert outputs == {"reply": "Thanks for your patience, your refund is on its way."}
    user = _checked_request(model).body["messages"][1]["content"]
    assert user == (
        "Draft a reply to this message:\n\nWhere is my refund?"
        "\n\nInstructions for the reply: Be warm; it was sent today."
    )


# --- Configuration ----------------------------------------------------------------------------------------------


@override_settings(NEENA_LLM_MODEL="settings-model")
def test_the_settings_fill_in_what_the_credential_leaves_out(model):
    model.answer("ok")

    with override_settings(NEENA_LLM_BASE_URL=model.base_url):
        generate_text(_context(None), prompt="x")

    _checked_request(model, model_name="settings-model")


@override_settings(NEENA_LLM_BASE_URL="", NEENA_LLM_MODEL="")
def test_no_model_configured_is_a_task_error():
    with pytest.raises(TaskError, match="No model configured"):
        generate_text(_context(None), prompt="x")


# --- Addresses: the egress guard -------------------------------------------------------------------------------


@override_settings(NEENA_HTTP_ALLOWLIST=[])
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_a_credential_base_url_on_an_internal_address_is_refused_when_connecting(model, host):
    model.answer("never sent")

    with pytest.raises(TaskError, match="resolves to a loopback address") as refused:
        generate_text(_context(model, base_url=f"http://{host}:{model.server.server_address[1]}/v1"), prompt="x")

    assert not isinstance(refused.value, TransientTaskError)  # an address does not become public by retrying
    assert "NEENA_HTTP_ALLOWLIST" in str(refused.value)
    assert model.requests == []


@override_settings(NEENA_HTTP_ALLOWLIST=[], NEENA_LLM_MODEL="settings-model")
def test_the_operators_base_url_is_trusted_without_the_allowlist(model):
    model.answer("ok")

    with override_settings(NEENA_LLM_BASE_URL=model.base_url):
        outputs = generate_text(_context(None), prompt="x")

    assert outputs == {"text": "ok"}
    _checked_request(model, model_name="settings-model")


@override_settings(NEENA_HTTP_ALLOWLIST=[])
def test_a_name_rebound_to_loopback_after_the_check_never_reaches_it(model, monkeypatch):
    """DNS rebinding: the name answers a public address first and 127.0.0.1 afterwards. The guard resolves once,
    checks that answer and connects to it; a second look-up (which would answer 127.0.0.1) never happens."""
    port = model.server.server_address[1]
    lookups, connections = rebinding_resolver(monkeypatch, "models.rebind.test", first=["93.184.216.34"])
    model.answer("never sent")

    with pytest.raises(TransientTaskError, match="APIConnectionError"):
        generate_text(_context(model, base_url=f"http://models.rebind.test:{port}/v1"), prompt="x")

    assert connections == [("93.184.216.34", port)]
    assert lookups == ["models.rebind.test"]
    assert model.requests == []


# --- Errors -----------------------------------------------------------------------------------------------------


def test_rate_limits_are_transient_with_retry_after(model):
    model.answer("Slow down", status=429, headers={"Retry-After": "12"})

    with pytest.raises(TransientTaskError, match="rate limiting") as limited:
        generate_text(_context(model), prompt="x")

    assert limited.value.retry_after == 12
    assert len(model.requests) == 1  # no retries inside the client: the engine retries


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_transient(model, status):
    model.answer("overloaded", status=status)

    with pytest.raises(TransientTaskError, match="overloaded"):
        llm_summarize_text(_context(model), text="x")


def test_timeouts_and_unreachable_servers_are_transient(model):
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        with pytest.raises(TransientTaskError, match="APITimeoutError"):
            generate_text(
                _context(model, base_url=f"http://127.0.0.1:{silent.getsockname()[1]}/v1", time_limit=0.2), prompt="x"
            )
    with pytest.raises(TransientTaskError, match="APIConnectionError"):
        generate_text(_context(model, base_url="http://127.0.0.1:9/v1"), prompt="x")


@pytest.mark.parametrize("status", [400, 401, 404])
def test_other_api_errors_are_permanent(model, status):
    model.answer("Invalid API key", status=status)

    with pytest.raises(TaskError, match=f"refused the request \\({status}\\): Invalid API key") as refused:
        draft_reply(_context(model), message="x")

    assert not isinstance(refused.value, TransientTaskError)


def test_an_empty_answer_is_a_task_error(model):
    model.answer("   ")

    with pytest.raises(TaskError, match="no text"):
        generate_text(_context(model), prompt="x")


def test_declarations():
    tasks = {task.task_name: task for task in connector.CONNECTOR.tasks}

    assert (connector.CONNECTOR.name, connector.CONNECTOR.short_name) == ("OpenAI-compatible LLM", "llm")
    assert {name: (t.python_method_name, t.side_effect) for name, t in tasks.items()} == {
        "Generate Text with LLM": ("generate_text", False),
        "Classify Text with LLM": ("llm_classify_text", False),
        "Summarize Text with LLM": ("llm_summarize_text", False),
        "Draft Reply with LLM": ("draft_reply", False),
    }
    assert [p.name for p in tasks["Draft Reply with LLM"].outputs] == ["reply"]


# --- Through the engine -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_flow_step_runs_with_the_organizations_credential(model, owner, organization, monkeypatch):
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: None)
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    credential_upsert(
        user=owner,
        integration_short_name="llm",
        api_key=API_KEY,
        config={"base_url": model.base_url, "model": "org-model"},
    )
    model.answer("Payments failed at noon and recovered by one.")
    flow = make_flow(
        owner,
        [
            step(
                0,
                "Summarize Text with LLM",
                text="The payment service failed at noon. Engineers restarted it. Payments recovered by one.",
                max_sentences=1,
            )
        ],
        [],
    )
    flow_run = flow_execute(user=owner, flow=flow, flow_request=make_request(owner))

    task_run_execute(task_run_id=TaskRun.objects.get(flow_run=flow_run, task_operation_index=0).id)

    task_run = TaskRun.objects.get(flow_run=flow_run, task_operation_index=0)
    assert (task_run.status, task_run.error) == (TaskRun.Status.COMPLETED, "")
    assert task_run.result == {"summary": "Payments failed at noon and recovered by one."}
    assert FlowRun.objects.get(id=flow_run.id).status == FlowRun.Status.COMPLETED
    [received] = model.requests
    _checked_request(model, model_name="org-model")
    assert received.body["messages"][1]["content"] == (
        "Summarize this text in at most 1 sentence:\n\n"
        "The payment service failed at noon. Engineers restarted it. Payments recovered by one."
    )
