"""Invalid text never reaches the database: a lone surrogate or a NUL anywhere in a JSON body, or a body nested
deeper than NEENA_MAX_JSON_DEPTH, is a 422 naming the field, nothing is stored, and every list still answers.

Bodies are sent as bytes: a test client encoding a lone surrogate as UTF-8 would fail before the request is made.
"""

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import override_settings

from apps.credentials.models import IntegrationCredential
from apps.flows.models import Flow, FlowRequest
from apps.runs.models import ApprovalDecision, FlowRun
from apps.webhooks.models import WebhookTriggerOperation
from tests.factories import FlowRequestFactory, FlowRunFactory, chain_flow, task_definition, trigger_definition
from tests.webhooks.signing import ZENDESK_TICKET_CREATED

pytestmark = pytest.mark.django_db

BAD_TEXT = {
    "lone surrogate": ("a\ud800b", "surrogate_characters_not_allowed"),
    "NUL": ("a\x00b", "null_characters_not_allowed"),
}
LISTS = (
    "/api/v1/flow_requests/all",
    "/api/v1/flows/all",
    "/api/v1/flow_runs/all",
    "/api/v1/integration_credentials/all",
    "/api/v1/webhook_trigger_operations/all",
)


def _send(api, method: str, path: str, body: Any):
    # ensure_ascii: the surrogate goes as its \ud800 escape, which is what a client sends.
    return api.generic(method, path, json.dumps(body), content_type="application/json")


def _flow_body(name: Any = "Flow", parameters: Any = None) -> dict[str, Any]:
    return {
        "name": name,
        "task_operations": [
            {
                "name": "Greet",
                "task_definition": str(task_definition("Format Text").id),
                "index": 0,
                "parameters": parameters or {"template": "Hello"},
            }
        ],
        "dependencies": [],
    }


def _flow_requests_post(organization, bad):
    body = {"request_instructions": "x", "request_metadata": [{"customer": {"name": bad}}]}
    return "POST", "/api/v1/flow_requests/", body, ["body", "request_metadata", 0, "customer", "name"], FlowRequest


def _flow_requests_put(organization, bad):
    flow_request = FlowRequestFactory(organization=organization)
    body = {"id": str(flow_request.id), "request_instructions": "x", "request_metadata": {"notes": ["ok", bad]}}
    return "PUT", "/api/v1/flow_requests/", body, ["body", "request_metadata", "notes", 1], FlowRequest


def _flows_post(organization, bad):
    body = _flow_body(parameters={"template": "Hello", "values": {"name": bad}})
    return "POST", "/api/v1/flows/", body, ["body", "task_operations", 0, "parameters", "values", "name"], Flow


def _flows_put(organization, bad):
    flow = chain_flow(organization)
    body = {"id": str(flow.id), **_flow_body(parameters={"template": bad})}
    return "PUT", "/api/v1/flows/", body, ["body", "task_operations", 0, "parameters", "template"], Flow


def _approve(organization, bad):
    flow_run = FlowRunFactory(
        organization=organization,
        status=FlowRun.Status.AWAITING_APPROVAL,
        approval_status=FlowRun.ApprovalStatus.PENDING,
    )
    path = f"/api/v1/flow_runs/approve?flow_run_id={flow_run.id}"
    return "PUT", path, {"parameters": {"template": bad}}, ["body", "parameters", "template"], ApprovalDecision


def _credentials_post(organization, bad):
    body = {"integration_short_name": "zendesk", "api_key": "secret", "config": {"subdomain": bad}}
    return "POST", "/api/v1/integration_credentials/", body, ["body", "config", "subdomain"], IntegrationCredential


def _trigger_operations_post(organization, bad):
    # Its fields are all text, which DRF's CharField already refused: this one guards that it still is.
    body = {
        "name": bad,
        "webhook_trigger_definition": str(trigger_definition(ZENDESK_TICKET_CREATED).id),
        "template_body": "Summarize the ticket.",
        "status": "active",
    }
    return "POST", "/api/v1/webhook_trigger_operations/", body, ["body", "name"], WebhookTriggerOperation


ENDPOINTS: dict[str, Callable[..., tuple[str, str, Any, list[Any], Any]]] = {
    "flow_requests POST": _flow_requests_post,
    "flow_requests PUT": _flow_requests_put,
    "flows POST": _flows_post,
    "flows PUT": _flows_put,
    "flow_runs approve": _approve,
    "integration_credentials POST": _credentials_post,
    "webhook_trigger_operations POST": _trigger_operations_post,
}


def _snapshot(model) -> list[tuple[Any, Any]]:
    return sorted((str(row.pk), row.modified_date) for row in model.objects.all())


@pytest.mark.parametrize("kind", BAD_TEXT)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_unstorable_text_in_a_nested_field_is_422_naming_it_and_stores_nothing(api, organization, endpoint, kind):
    bad, error_type = BAD_TEXT[kind]
    method, path, body, location, model = ENDPOINTS[endpoint](organization, bad)
    before = _snapshot(model)

    response = _send(api, method, path, body)

    assert response.status_code == 422, response.content
    (item,) = response.json()["detail"]
    assert item["loc"] == location
    assert item["type"] == error_type
    assert _snapshot(model) == before
    for list_path in LISTS:
        assert api.get(list_path).status_code == 200, list_path


def test_a_bad_key_is_named_with_the_replacement_character(api):
    body = {"request_instructions": "x", "request_metadata": {"ok": {"k\ud800": 1}}}

    response = _send(api, "POST", "/api/v1/flow_requests/", body)

    assert response.status_code == 422
    (item,) = response.json()["detail"]
    assert item["loc"] == ["body", "request_metadata", "ok", "k\ufffd"]
    assert item["type"] == "surrogate_characters_not_allowed"
    assert not FlowRequest.objects.exists()


def _nested(depth: int) -> str:
    """A flow request whose metadata, with the body itself, makes ``depth`` levels of objects and arrays."""
    return '{"request_instructions": "x", "request_metadata": {"a": ' + "[" * (depth - 2) + "]" * (depth - 2) + "}}"


@pytest.mark.parametrize("depth", [65, 10_000])
def test_a_body_nested_deeper_than_the_limit_is_422(api, depth):
    response = api.generic("POST", "/api/v1/flow_requests/", _nested(depth), content_type="application/json")

    assert response.status_code == 422, response.content
    (item,) = response.json()["detail"]
    assert item["type"] == "json_too_deep"
    assert "64" in item["msg"]
    assert not FlowRequest.objects.exists()
    assert api.get("/api/v1/flow_requests/all").status_code == 200


def test_a_body_at_the_limit_is_accepted(api):
    response = api.generic("POST", "/api/v1/flow_requests/", _nested(64), content_type="application/json")

    assert response.status_code == 200, response.content


@override_settings(NEENA_MAX_JSON_DEPTH=3)
def test_the_limit_is_a_setting(api):
    response = api.generic("POST", "/api/v1/flow_requests/", _nested(4), content_type="application/json")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "request_metadata", "a", 0]  # the fourth level


@pytest.mark.parametrize("query", ["id=%00", "id=00000000-0000-0000-0000-000000000000%00", "limit=1%00", "x%00=1"])
def test_a_nul_in_the_query_string_is_422(api, query):
    response = api.get(f"/api/v1/flow_requests/?{query}")

    assert response.status_code == 422, response.content
    (item,) = response.json()["detail"]
    assert item["loc"][0] == "query"
    assert item["type"] == "null_characters_not_allowed"


def test_a_nul_in_a_list_filter_is_422_not_a_database_error(api):
    # SQLite would store and compare the NUL; PostgreSQL refuses it (a 500 before the check).
    response = api.get("/api/v1/flow_results/?integration_short_name=core&integration_entity_id=a%00b")

    assert response.status_code == 422, response.content
    assert response.json()["detail"][0]["loc"] == ["query", "integration_entity_id"]
