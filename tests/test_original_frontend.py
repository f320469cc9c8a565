"""The original product's web frontend works unchanged: the calls it makes, with the bodies it sends, succeed, and its
answers carry the fields it reads (issue 15, point 1).

The frontend (a Vue single-page app) creates a flow request of up to 512 characters, generates a flow from it, lets
the person edit it on a canvas and saves it with ``PUT /flows/``, named "Flow for <the request>"; the objects it
sends back carry its canvas's node ids (``drawflow_node_id``, ``source_drawflow_node_id``, ...) and ``instructions``
where the API says ``instruction``. Its flows page shows ``created_by_human``; it stores credentials with the original
body ``{"integration": <uuid>, "credential": "<secret>"}``.
"""

import pytest

from apps.credentials.encryption import decrypt_json
from apps.credentials.models import IntegrationCredential
from apps.flows.models import NAME_MAX_LENGTH, Flow
from apps.integrations.models import Integration
from tests.factories import chain_flow

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
