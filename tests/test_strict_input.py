"""Strict input: a body field an endpoint does not know answers 422 naming it, on every write endpoint and at any
depth; the documented bodies, and objects sent back as they were read, still pass (their read-only fields ignored)."""

import pytest

from apps.runs.models import FlowRun
from tests.factories import (
    FlowRequestFactory,
    FlowRunFactory,
    WebhookTriggerOperationFactory,
    chain_flow,
    task_definition,
    trigger_definition,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    """Runs created here are not executed."""
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: None)


@pytest.fixture
def objects(organization):
    flow = chain_flow(organization)
    return {
        "flow": flow,
        "flow_request": FlowRequestFactory(organization=organization),
        "run": FlowRunFactory(organization=organization, flow=flow, status=FlowRun.Status.FAILED),
        "operation": WebhookTriggerOperationFactory(organization=organization),
    }


def _flow_body(**overrides):
    body = {
        "name": "Greet",
        "task_operations": [
            {"name": "Greet", "task_definition": str(task_definition("Format Text").id), "index": 0},
            {
                "name": "Notify",
                "task_definition": str(task_definition("Send Notification").id),
                "index": 1,
                "parameters": {"recipient": "ann@example.com", "message": "{{ steps.0.result.text }}"},
            },
        ],
        "dependencies": [{"source_task_operation": 0, "target_task_operation": 1}],
    }
    return body | overrides


def _document(**overrides):
    """A flows-as-code document (``flows/import``), which, unlike a flow's body, takes no field of a flow's answer."""
    step = {"name": "Greet", "task": {"integration": "core", "task": "Format Text"}, "index": 0}
    return {"neena_flow": 1, "name": "Greet", "steps": [step]} | overrides


def _write_requests(objects, owner):
    """Every write endpoint, each with a body holding one field it does not take: (method, url, body, field)."""
    flow, flow_request, run, operation = objects["flow"], objects["flow_request"], objects["run"], objects["operation"]
    zendesk = str(trigger_definition("Zendesk Ticket Created").id)
    template = "Summarise ticket <{ticket_id}> (<{subject}>)."
    return [
        ("post", "/api/v1/flow_requests/", {"request_instructions": "x", "request_nmae": "R"}, "request_nmae"),
        (
            "put",
            "/api/v1/flow_requests/",
            {"id": str(flow_request.id), "request_instructions": "x", "metadata": {}},
            "metadata",
        ),
        ("post", "/api/v1/flows/", _flow_body(dependancies=[]), "dependancies"),
        ("put", "/api/v1/flows/", _flow_body(id=str(flow.id), title="x"), "title"),
        (
            "post",
            f"/api/v1/flows/execute?flow_id={flow.id}&flow_request_id={flow_request.id}",
            {"inputs": {"name": "Ann"}},
            "inputs",
        ),
        ("post", f"/api/v1/flows/generate?flow_request_id={flow_request.id}", {"instructions": "x"}, "instructions"),
        ("post", "/api/v1/flows/import", _document(id=str(flow.id)), "id"),
        ("post", f"/api/v1/flows/import?flow_id={flow.id}", _document(task_operations=[]), "task_operations"),
        (
            "post",
            "/api/v1/flow_runs/",
            {"flow": str(flow.id), "flow_request": str(flow_request.id), "stauts": "pending"},
            "stauts",
        ),
        ("put", f"/api/v1/flow_runs/approve?flow_run_id={run.id}", {"paramters": {"template": "x"}}, "paramters"),
        ("put", f"/api/v1/flow_runs/reject?flow_run_id={run.id}", {"reason": "no"}, "reason"),
        ("post", f"/api/v1/flow_runs/cancel?flow_run_id={run.id}", {"reason": "no"}, "reason"),
        ("post", f"/api/v1/flow_runs/retry?flow_run_id={run.id}", {"steps": [1]}, "steps"),
        ("post", f"/api/v1/flow_runs/rerun?flow_run_id={run.id}", {"inputs": {}}, "inputs"),
        (
            "post",
            f"/api/v1/flow_runs/rerun_from?flow_run_id={run.id}&task_operation_index=0",
            {"paramters": {"template": "x"}},
            "paramters",
        ),
        ("post", "/api/v1/flow_runs/retry_failed", {"flow_id": str(flow.id), "after": "2026-01-01"}, "after"),
        (
            "post",
            "/api/v1/integration_credentials/",
            {"integration_short_name": "trello", "api_key": "k", "apikey": "k"},
            "apikey",
        ),
        (
            "post",
            "/api/v1/integration_credentials/oauth2/code",
            {"integration_short_name": "slack", "code": "c", "state": "s", "redirect_uri": "https://x"},
            "redirect_uri",
        ),
        (
            "post",
            "/api/v1/users/create_if_not_exists",
            {"email": owner.email, "auth0_id": "a", "fullname": "Olive"},
            "fullname",
        ),
        (
            "post",
            "/api/v1/webhook_trigger_operations/",
            {"name": "n", "webhook_trigger_definition": zendesk, "template_body": template, "template": "x"},
            "template",
        ),
        (
            "put",
            "/api/v1/webhook_trigger_operations/",
            {"id": str(operation.id), "name": "n", "template_body": template, "secret": "x" * 20},
            "secret",
        ),
        ("post", f"/api/v1/webhook_trigger_operations/rotate_secret?id={operation.id}", {"secret": "x"}, "secret"),
    ]


def test_every_write_endpoint_names_a_field_it_does_not_know(api, owner, objects):
    for method, url, body, field in _write_requests(objects, owner):
        response = getattr(api, method)(url, body, format="json")

        assert response.status_code == 422, f"{method.upper()} {url} answered {response.status_code}"
        unknown = [item for item in response.json()["detail"] if item["type"] == "unknown_field"]
        assert [item["loc"] for item in unknown] == [["body", field]], f"{method.upper()} {url}"
    # Nothing happened on the way.
    assert FlowRun.objects.count() == 1
    assert objects["run"].status == FlowRun.objects.get(id=objects["run"].id).status == FlowRun.Status.FAILED


def test_the_message_suggests_the_field_meant(api, objects):
    run = objects["run"]

    response = api.put(f"/api/v1/flow_runs/approve?flow_run_id={run.id}", {"paramters": {}}, format="json")

    assert response.json()["detail"] == [
        {
            "loc": ["body", "paramters"],
            "msg": "Unknown field 'paramters'; did you mean 'parameters'?",
            "type": "unknown_field",
        }
    ]


def test_unknown_fields_inside_steps_and_edges_are_located(api):
    body = _flow_body()
    body["task_operations"][1]["paramters"] = {"recipient": "ann@example.com"}
    body["dependencies"][0]["source"] = 0

    response = api.post("/api/v1/flows/", body, format="json")

    assert response.status_code == 422
    assert [(item["loc"], item["type"]) for item in response.json()["detail"]] == [
        (["body", "task_operations", 1, "paramters"], "unknown_field"),
        (["body", "dependencies", 0, "source"], "unknown_field"),
    ]


def test_unknown_fields_are_listed_with_the_other_problems(api):
    response = api.post("/api/v1/flow_requests/", {"request_nmae": "R", "flow": "nope"}, format="json")

    assert response.status_code == 422
    assert sorted((item["loc"][-1], item["type"]) for item in response.json()["detail"]) == [
        ("flow", "invalid"),
        ("request_instructions", "required"),
        ("request_nmae", "unknown_field"),
    ]


def test_a_body_that_is_not_an_object_is_still_422(api, objects):
    run = objects["run"]

    for url in (f"/api/v1/flow_runs/approve?flow_run_id={run.id}", f"/api/v1/flow_runs/reject?flow_run_id={run.id}"):
        response = api.put(url, [1, 2], format="json")
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body"]


# --- documented bodies still pass --------------------------------------------------------------------------------


def test_the_documented_flow_request_bodies_pass(api, organization, objects):
    documented = {
        "request_instructions": "Process this request.",
        "request_metadata": [{"key": "value"}],
        "request_name": "Sample Request",
        "flow": str(objects["flow"].id),
        "organization": str(organization.id),
    }
    created = api.post("/api/v1/flow_requests/", documented, format="json")
    assert created.status_code == 200, created.content

    updated = api.put(
        "/api/v1/flow_requests/",
        documented | {"id": created.json()["id"], "request_instructions": "Updated instructions."},
        format="json",
    )
    assert updated.status_code == 200, updated.content

    # A client that sends back what it read: id, the audit fields and every other field of the shape are accepted.
    read = api.get(f"/api/v1/flow_requests/?id={created.json()['id']}").json()
    for method in ("post", "put"):
        response = getattr(api, method)("/api/v1/flow_requests/", read | {"request_name": method}, format="json")
        assert response.status_code == 200, (method, response.content)
    assert api.get("/api/v1/flow_requests/all").json()[0]["request_name"] == "post"


def test_the_documented_flow_bodies_pass(api):
    documented = {
        "name": "Example Flow",
        "task_operations": [
            {
                "name": "Task 1",
                "task_definition": str(task_definition("Format Text").id),
                "instruction": "Perform task 1",
                "index": 0,
            },
            {
                "name": "Task 2",
                "task_definition": str(task_definition("Summarize Text").id),
                "instruction": "Perform task 2",
                "index": 1,
            },
        ],
        "dependencies": [
            {"source_task_operation": 0, "target_task_operation": 1, "instruction": "Task 2 depends on Task 1"}
        ],
    }
    created = api.post("/api/v1/flows/", documented, format="json")
    assert created.status_code == 200, created.content
    read = created.json()

    # The flow as read, sent back with a new name: the ids, audit fields, sorted_index, planner... are ignored.
    updated = api.put("/api/v1/flows/", read | {"name": "Updated Flow Name"}, format="json")
    assert updated.status_code == 200, updated.content
    assert updated.json()["name"] == "Updated Flow Name"
    assert [step["id"] for step in updated.json()["task_operations"]] == [
        step["id"] for step in read["task_operations"]
    ]
    again = api.post("/api/v1/flows/", read, format="json")
    assert again.status_code == 200 and again.json()["id"] != read["id"]


def test_the_documented_flow_run_body_passes(api, objects):
    documented = {
        "flow": str(objects["flow"].id),
        "flow_request": str(objects["flow_request"].id),
        "status": "pending",
        "approval_status": None,
        "triggered_time": None,
        "end_time": None,
        "triggered_by": None,
    }
    response = api.post("/api/v1/flow_runs/", documented, format="json")
    assert response.status_code == 200, response.content

    # A run as read, sent back to start another (its id, task runs, totals... ignored).
    read = api.get(f"/api/v1/flow_runs/with_flow_result?id={response.json()['id']}").json()
    again = api.post("/api/v1/flow_runs/", read | {"status": "pending"}, format="json")
    assert again.status_code == 200, again.content
    assert again.json()["id"] != read["id"]


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_a_flow_run_cannot_be_created_with_a_terminal_status(api, objects, status):
    body = {"flow": str(objects["flow"].id), "flow_request": str(objects["flow_request"].id), "status": status}

    response = api.post("/api/v1/flow_runs/", body, format="json")

    assert response.status_code == 422
    (item,) = response.json()["detail"]
    assert (item["loc"], item["type"]) == (["body", "status"], "status_not_allowed")
    assert FlowRun.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "loc", "type"),
    [
        ({"approval_status": "approved"}, ["body", "approval_status"], "status_not_allowed"),
        ({"approval_status": "rejected"}, ["body", "approval_status"], "status_not_allowed"),
        ({"status": "finished"}, ["body", "status"], "invalid_choice"),
    ],
)
def test_a_flow_run_cannot_be_created_decided_or_with_a_made_up_status(api, objects, fields, loc, type):
    body = {"flow": str(objects["flow"].id), "flow_request": str(objects["flow_request"].id)} | fields

    response = api.post("/api/v1/flow_runs/", body, format="json")

    assert response.status_code == 422
    assert [(item["loc"], item["type"]) for item in response.json()["detail"]] == [(loc, type)]


@pytest.mark.parametrize(
    "fields", [{"status": "in_progress"}, {"status": ""}, {"status": None}, {"approval_status": "pending"}]
)
def test_a_status_that_has_not_ended_is_ignored(api, objects, fields):
    body = {"flow": str(objects["flow"].id), "flow_request": str(objects["flow_request"].id)} | fields

    response = api.post("/api/v1/flow_runs/", body, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "pending"


def test_the_documented_webhook_trigger_operation_bodies_pass(api):
    documented = {
        "name": "New Issue Created",
        "webhook_trigger_definition": str(trigger_definition("Zendesk Ticket Created").id),
        "template_body": "Summarise ticket <{ticket_id}> (<{subject}>) and draft a reply to <{requester_email}>.",
        "status": "inactive",
    }
    created = api.post("/api/v1/webhook_trigger_operations/", documented, format="json")
    assert created.status_code == 200, created.content

    read = api.get(f"/api/v1/webhook_trigger_operations/?id={created.json()['id']}").json()
    updated = api.put("/api/v1/webhook_trigger_operations/", read | {"name": "Renamed"}, format="json")
    assert updated.status_code == 200, updated.content
    assert updated.json()["name"] == "Renamed"


def test_the_documented_user_and_credential_bodies_pass(api, owner):
    documented = {"email": owner.email, "full_name": "John Doe", "auth0_id": "auth0|123456789"}
    assert api.post("/api/v1/users/create_if_not_exists", documented, format="json").status_code == 200
    me = api.get("/api/v1/users/").json()
    assert api.post("/api/v1/users/create_if_not_exists", me, format="json").status_code == 200

    created = api.post(
        "/api/v1/integration_credentials/", {"integration_short_name": "trello", "api_key": "k"}, format="json"
    )
    assert created.status_code == 200, created.content
    resent = api.post("/api/v1/integration_credentials/", created.json() | {"api_key": "k2"}, format="json")
    assert resent.status_code == 200, resent.content


def test_approve_without_a_body_as_documented(api, organization):
    run = FlowRunFactory(
        organization=organization,
        status=FlowRun.Status.AWAITING_APPROVAL,
        approval_status=FlowRun.ApprovalStatus.PENDING,
    )

    response = api.put(f"/api/v1/flow_runs/approve?flow_run_id={run.id}")

    assert response.status_code == 200, response.content
    assert response.json()["approval_status"] == "approved"
