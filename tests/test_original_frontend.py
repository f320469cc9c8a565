"""The original product's web frontend works unchanged: the calls it makes, with the bodies it sends, succeed, and its
answers carry the fields it reads (issue 15, point 1).

The frontend (a Vue single-page app) creates a flow request of up to 512 characters, generates a flow from it, lets
the person edit it on a canvas and saves it with ``PUT /flows/``, named "Flow for <the request>"; the objects it
sends back carry its canvas's node ids (``drawflow_node_id``, ``source_drawflow_node_id``, ...) and ``instructions``
where the API says ``instruction``. Its flows page shows ``created_by_human``; it stores credentials with the original
body ``{"integration": <uuid>, "credential": "<secret>"}``. It runs a flow with ``POST /flows/execute?id=<flow id>``
and no flow request (its backend's execute took only the flow): the run is for the request linked to the flow.
"""

from datetime import timedelta

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from apps.accounts.models import Organization
from apps.credentials.encryption import decrypt_json
from apps.credentials.models import IntegrationCredential
from apps.flows.models import NAME_MAX_LENGTH, Flow, FlowRequest
from apps.integrations.models import Integration
from apps.runs.models import FlowRun
from tests.factories import FlowRequestFactory, add_member, chain_flow
from tests.workers import wait_for

pytestmark = pytest.mark.django_db

# The longest request the frontend accepts (its schema's request_instructions max_length) and one it can send.
LONGEST_REQUEST = (
    "Get Zendesk ticket 123, summarize it, then add an internal note with the summary. "
    + "Keep the note short and polite, and mention the customer's order number if the ticket names one. " * 5
)[:512]


def _generated_flow(api) -> dict:
    """The frontend's first two calls: create the request, generate its flow."""
    flow_request = api.post("/api/v1/flow_requests/", {"request_instructions": LONGEST_REQUEST}, format="json")
    assert flow_request.status_code == 200, flow_request.content
    generated = api.get(f"/api/v1/flows/generate?flow_request_id={flow_request.json()['id']}")
    assert generated.status_code == 200, generated.content
    return generated.json()


def _as_the_canvas_sends_it(flow: dict, name: str) -> dict:
    """The flow as the frontend's saveFlow sends it back: its canvas's node ids and ``instructions`` added."""
    for node_id, operation in enumerate(flow["task_operations"], start=1):
        operation["drawflow_node_id"] = node_id
        operation["instructions"] = ""
    for dependency in flow["dependencies"]:
        dependency["source_drawflow_node_id"] = dependency["source_task_operation"] + 1
        dependency["target_drawflow_node_id"] = dependency["target_task_operation"] + 1
    return {**flow, "name": name}


def test_a_flow_generated_from_the_longest_request_saves_under_the_frontends_name(api):
    assert len(LONGEST_REQUEST) == 512
    flow = _generated_flow(api)
    name = f"Flow for {LONGEST_REQUEST}"

    response = api.put("/api/v1/flows/", _as_the_canvas_sends_it(flow, name), format="json")

    assert response.status_code == 200, response.content
    assert response.json()["name"] == name
    assert Flow.objects.get(id=flow["id"]).name == name


def test_a_new_flow_from_the_canvas_saves_with_post(api):
    flow = _generated_flow(api)
    body = _as_the_canvas_sends_it(flow, f"Flow for {LONGEST_REQUEST}")
    for operation in body["task_operations"]:
        del operation["id"]

    response = api.post("/api/v1/flows/", {key: value for key, value in body.items() if key != "id"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["id"] != flow["id"]


def test_a_name_over_the_cap_is_still_a_422_naming_the_field(api):
    flow = _generated_flow(api)

    response = api.put("/api/v1/flows/", {**flow, "name": "x" * (NAME_MAX_LENGTH + 1)}, format="json")

    assert response.status_code == 422
    assert [item["loc"] for item in response.json()["detail"]] == [["body", "name"]]


def test_long_request_names_are_accepted_too(api):
    name = f"Request for {LONGEST_REQUEST}"

    response = api.post(
        "/api/v1/flow_requests/", {"request_instructions": LONGEST_REQUEST, "request_name": name}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["request_name"] == name


def test_the_canvas_instructions_are_kept_where_instruction_is_blank(api, organization):
    flow = _generated_flow(api)
    body = _as_the_canvas_sends_it(flow, "Edited")
    body["task_operations"][0]["instruction"] = ""
    body["task_operations"][0]["instructions"] = "Look the ticket up first."
    body["task_operations"][1]["instructions"] = "Ignored: instruction is given."

    saved = api.put("/api/v1/flows/", body, format="json").json()

    assert saved["task_operations"][0]["instruction"] == "Look the ticket up first."
    assert saved["task_operations"][1]["instruction"] == flow["task_operations"][1]["instruction"]
    assert "instructions" not in saved["task_operations"][0]


def test_created_by_human_tells_made_from_generated_in_the_flows_list(api, organization):
    made = chain_flow(organization)
    generated = _generated_flow(api)
    api.put("/api/v1/flows/", _as_the_canvas_sends_it(generated, "Edited by a person"), format="json")

    listed = {flow["id"]: flow for flow in api.get("/api/v1/flows/all?limit=20").json()}

    assert listed[str(made.id)]["created_by_human"] is True
    assert listed[generated["id"]]["created_by_human"] is False  # editing a generated flow does not make it human-made
    assert generated["created_by_human"] is False


def test_a_client_cannot_claim_who_made_a_flow(api):
    generated = _generated_flow(api)
    body = {**generated, "created_by_human": True, "modified_by_human": True, "sorted": True}

    response = api.put("/api/v1/flows/", body, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["created_by_human"] is False


def test_unknown_fields_are_still_refused(api):
    flow = _generated_flow(api)
    flow["task_operations"][0]["paramters"] = {}

    response = api.put("/api/v1/flows/", flow, format="json")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "task_operations", 0, "paramters"]


# --- credentials ---------------------------------------------------------------------------------------------------


def _api_key_integration() -> Integration:
    return Integration.objects.get(short_name="perplexity")


def test_the_original_credential_body_stores_the_secret(api, owner):
    integration = _api_key_integration()

    response = api.post(
        "/api/v1/integration_credentials/",
        {"integration": str(integration.id), "credential": "pplx-secret"},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["integration"] == str(integration.id)
    assert body["secret_fields"] == ["api_key"]
    assert "credential" not in body and "pplx-secret" not in response.content.decode()
    stored = IntegrationCredential.objects.get(integration=integration, owner=owner)
    assert decrypt_json(stored.secret_ciphertext) == {"api_key": "pplx-secret"}


def test_todays_credential_body_still_works(api):
    response = api.post(
        "/api/v1/integration_credentials/", {"integration_short_name": "perplexity", "api_key": "k"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["secret_fields"] == ["api_key"]


def test_two_different_secrets_in_one_body_are_refused(api):
    response = api.post(
        "/api/v1/integration_credentials/",
        {"integration": str(_api_key_integration().id), "credential": "a", "api_key": "b"},
        format="json",
    )

    assert response.status_code == 422
    assert [(item["loc"], item["type"]) for item in response.json()["detail"]] == [(["body", "credential"], "conflict")]
    assert not IntegrationCredential.objects.exists()


def test_a_blank_credential_is_no_secret(api):
    response = api.post(
        "/api/v1/integration_credentials/",
        {"integration": str(_api_key_integration().id), "credential": ""},
        format="json",
    )

    assert response.status_code == 422
    assert [item["loc"] for item in response.json()["detail"]] == [["body", "credential"]]
    assert not IntegrationCredential.objects.exists()


# --- the original schemas' fields ----------------------------------------------------------------------------------


def test_integrations_carry_the_original_auth_flags(api):
    integrations = {item["short_name"]: item for item in api.get("/api/v1/integrations/all").json()}

    assert (integrations["perplexity"]["uses_api_key"], integrations["perplexity"]["uses_sso_key"]) == (True, False)
    assert (integrations["slack"]["uses_api_key"], integrations["slack"]["uses_sso_key"]) == (False, True)
    assert (integrations["core"]["uses_api_key"], integrations["core"]["uses_sso_key"]) == (False, False)


# Every field the original backend's response schemas (its pydantic models) return, beyond those its docs show.
ORIGINAL_SCHEMA_FIELDS = {
    "/api/v1/users/": {"email", "full_name", "auth0_id", "id", "permissions"},
    "/api/v1/flows/all": {
        "name",
        "task_operations",
        "dependencies",
        "id",
        "created_date",
        "modified_date",
        "created_by_email",
        "modified_by_email",
        "organization",
        "created_by_human",
    },
    "/api/v1/integrations/all": {
        "class_name",
        "name",
        "short_name",
        "id",
        "created_date",
        "modified_date",
        "uses_api_key",
        "uses_sso_key",
    },
    "/api/v1/integration_credentials/all": {
        "integration",
        "id",
        "created_by_email",
        "organization",
        "modified_by_email",
        "created_date",
        "modified_date",
    },
}


@pytest.mark.parametrize("path", ORIGINAL_SCHEMA_FIELDS)
def test_answers_carry_every_field_of_the_original_schemas(api, organization, path):
    chain_flow(organization)
    api.post(
        "/api/v1/integration_credentials/", {"integration_short_name": "perplexity", "api_key": "k"}, format="json"
    )

    body = api.get(path).json()
    item = body[0] if isinstance(body, list) else body

    assert ORIGINAL_SCHEMA_FIELDS[path] - set(item) == set()


# --- executing: ?id= and no flow request --------------------------------------------------------------------------


def _linked_request(flow: Flow, age_minutes: int = 0, **fields) -> FlowRequest:
    """A request of the flow's organization linked to it, made ``age_minutes`` ago."""
    flow_request = FlowRequestFactory(organization=flow.organization, flow=flow, **fields)
    created = timezone.now() - timedelta(minutes=age_minutes)
    FlowRequest.objects.filter(id=flow_request.id).update(created_date=created)
    return flow_request


def _run_of(response) -> FlowRun:
    assert response.status_code == 200, response.content
    return FlowRun.objects.get(id=response.json()["id"])


def test_the_original_execute_runs_the_flow_for_its_newest_linked_request(api, organization):
    flow = chain_flow(organization)
    _linked_request(flow, age_minutes=10)
    newest = _linked_request(flow, age_minutes=1)
    _linked_request(flow, age_minutes=0, deleted_at=timezone.now())  # deleted: never chosen
    FlowRequestFactory(organization=organization)  # newer still, but not linked to the flow

    run = _run_of(api.post(f"/api/v1/flows/execute?id={flow.id}"))

    assert (run.flow_id, run.flow_request_id) == (flow.id, newest.id)
    assert run.flow_version_id == flow.latest_version_id
    assert run.status == FlowRun.Status.PENDING


def test_a_request_linked_from_another_organization_is_not_chosen(api, owner, organization):
    flow = chain_flow(organization)
    in_the_flows = _linked_request(flow, age_minutes=5)
    other = Organization.objects.create(name="Other")
    add_member(owner, other)
    moved = FlowRequestFactory(organization=other)
    FlowRequest.objects.filter(id=moved.id).update(flow=flow)  # linked, then moved: its flow link stayed

    run = _run_of(api.post(f"/api/v1/flows/execute?id={flow.id}"))

    assert run.flow_request_id == in_the_flows.id


def test_a_flow_without_a_linked_request_is_a_422_asking_for_one(api, organization):
    flow = chain_flow(organization)
    FlowRequestFactory(organization=organization)  # exists, but is not the flow's

    for url in (f"/api/v1/flows/execute?id={flow.id}", f"/api/v1/flows/execute?flow_id={flow.id}"):
        response = api.post(url)

        assert response.status_code == 422
        (item,) = response.json()["detail"]
        assert (item["loc"], item["type"]) == (["query", "flow_request_id"], "no_flow_request")
        assert "give flow_request_id" in item["msg"]
    assert not FlowRun.objects.exists()


def test_id_and_flow_id_naming_different_flows_is_a_422(api, organization):
    flow, other = chain_flow(organization), chain_flow(organization)
    flow_request = _linked_request(flow)

    response = api.post(f"/api/v1/flows/execute?id={flow.id}&flow_id={other.id}&flow_request_id={flow_request.id}")

    assert response.status_code == 422
    assert [(item["loc"], item["type"]) for item in response.json()["detail"]] == [(["query", "id"], "conflict")]
    assert not FlowRun.objects.exists()


def test_id_and_flow_id_naming_the_same_flow_run_it(api, organization):
    flow = chain_flow(organization)
    flow_request = _linked_request(flow)

    run = _run_of(api.post(f"/api/v1/flows/execute?id={flow.id}&flow_id={flow.id}"))

    assert run.flow_request_id == flow_request.id


def test_neither_id_nor_flow_id_is_a_422_at_flow_id(api, organization):
    response = api.post("/api/v1/flows/execute")

    assert response.status_code == 422
    assert [(item["loc"], item["type"]) for item in response.json()["detail"]] == [(["query", "flow_id"], "required")]


def test_the_documented_form_still_runs_the_request_it_names(api, organization):
    flow = chain_flow(organization)
    _linked_request(flow)
    named = FlowRequestFactory(organization=organization)  # not linked to the flow: named, so used

    run = _run_of(api.post(f"/api/v1/flows/execute?flow_id={flow.id}&flow_request_id={named.id}"))

    assert run.flow_request_id == named.id


def test_another_organizations_flow_is_a_404_by_id(api, outsider_organization):
    flow = chain_flow(outsider_organization)
    _linked_request(flow)

    response = api.post(f"/api/v1/flows/execute?id={flow.id}")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert not FlowRun.objects.exists()


def test_a_deleted_flow_is_a_404_by_id(api, owner, organization):
    flow = chain_flow(organization)
    _linked_request(flow)
    api.delete(f"/api/v1/flows/?id={flow.id}")

    assert api.post(f"/api/v1/flows/execute?id={flow.id}").status_code == 404


def test_the_idempotency_key_works_on_the_original_call(
    api, organization, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: sent.append(list(steps)))
    flow = chain_flow(organization)
    _linked_request(flow)
    key = "6c1f0b1e-6d2a-4a37-9b0e-0f1f3c2b7e11"

    with django_capture_on_commit_callbacks(execute=True):
        first = api.post(f"/api/v1/flows/execute?id={flow.id}", HTTP_IDEMPOTENCY_KEY=key)
    with django_capture_on_commit_callbacks(execute=True):
        second = api.post(f"/api/v1/flows/execute?id={flow.id}", HTTP_IDEMPOTENCY_KEY=key)
    reused = api.post(f"/api/v1/flows/execute?flow_id={flow.id}", HTTP_IDEMPOTENCY_KEY=key)

    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert second["Idempotent-Replayed"] == "true"
    assert FlowRun.objects.count() == 1
    assert len(sent) == 1
    # Another query string is another request, even one meaning the same run.
    assert reused.status_code == 422
    assert reused.json()["detail"][0]["type"] == "idempotency_key_reused"


def test_a_generated_flow_saved_from_the_canvas_runs_for_the_request_it_was_generated_from(api):
    """The frontend's main path: request, generate (which links the request), save (PUT), then Run (``?id=``)."""
    flow = _generated_flow(api)
    saved = api.put("/api/v1/flows/", _as_the_canvas_sends_it(flow, f"Flow for {LONGEST_REQUEST}"), format="json")
    assert saved.status_code == 200, saved.content
    (flow_request,) = api.get("/api/v1/flow_requests/all").json()

    run = _run_of(api.post(f"/api/v1/flows/execute?id={flow['id']}"))

    assert (str(run.flow_id), str(run.flow_request_id)) == (flow["id"], flow_request["id"])


def test_a_blank_canvas_flow_saves_as_the_frontend_builds_it(api):
    """addBlankTaskOp's steps: no id, no parameters, ``instructions`` blank, the canvas's fractional positions."""
    format_text = next(
        item for item in api.get("/api/v1/task_definitions/all").json() if item["task_name"] == "Format Text"
    )
    step = {"task_definition": format_text["id"], "instructions": ""}
    body = {
        "name": "Flow for a blank canvas",
        "task_operations": [
            {**step, "drawflow_node_id": 1, "name": "Format Text", "x": 400, "y": 150, "index": 0},
            {**step, "drawflow_node_id": 2, "name": "Format Text_2", "x": 712.5, "y": 180.75, "index": 1},
        ],
        "dependencies": [
            {
                "source_drawflow_node_id": 1,
                "target_drawflow_node_id": 2,
                "source_task_operation": 0,
                "target_task_operation": 1,
            }
        ],
    }

    response = api.post("/api/v1/flows/", body, format="json")

    assert response.status_code == 200, response.content
    assert [(item["name"], item["x"], item["y"]) for item in response.json()["task_operations"]] == [
        ("Format Text", 400, 150),
        ("Format Text_2", 712.5, 180.75),
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_the_frontends_save_link_and_run_completes_the_flow_for_its_request(api, organization):
    """The canvas's Run: the request made first, the flow saved, the request linked to it by sending the request's
    own answer back with ``flow`` set (updateFlowRequestWithFlowId), then ``execute?id=``; a worker runs it."""
    created = api.post("/api/v1/flow_requests/", {"request_instructions": "Format the greeting."}, format="json")
    assert created.status_code == 200, created.content
    flow = chain_flow(organization)
    linked = api.put("/api/v1/flow_requests/", {**created.json(), "flow": str(flow.id)}, format="json")
    assert linked.status_code == 200, linked.content

    response = api.post(f"/api/v1/flows/execute?id={flow.id}")

    assert response.status_code == 200, response.content
    assert response.json()["flow_request"] == created.json()["id"]

    def finished():
        body = api.get(f"/api/v1/flow_runs/?id={response.json()['id']}").json()
        return body if body["status"] in ("completed", "failed", "cancelled", "awaiting_approval") else None

    body = wait_for(finished, timeout=60, message="the run to settle")
    assert body["status"] == "completed", body
    assert [task_run["status"] for task_run in body["task_runs"]] == ["completed", "completed"]


def test_the_schema_describes_both_forms_of_execute():
    operation = SchemaGenerator().get_schema(request=None, public=True)["paths"]["/api/v1/flows/execute"]["post"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"] if parameter["in"] == "query"}

    assert {"flow_id", "id", "flow_request_id"} <= set(parameters)
    assert not any(parameters[name].get("required") for name in ("flow_id", "id", "flow_request_id"))
    assert "newest" in parameters["flow_request_id"]["description"]
    assert "flow_id" in parameters["id"]["description"]
