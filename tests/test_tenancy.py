"""Tenancy: another organization's objects answer 404 on every id-taking endpoint and never appear in lists."""

import pytest

from tests.factories import (
    FlowRequestFactory,
    FlowResultFactory,
    FlowRunFactory,
    WebhookTriggerOperationFactory,
    chain_flow,
    shared_organization,
    task_definition,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def owned(organization, api):
    """One object of every kind, in the owner's organization."""
    run = FlowRunFactory(organization=organization)
    result = FlowResultFactory(organization=organization, flow_run=run, integration_entity_id="4242")
    credential = api.post(
        "/api/v1/integration_credentials/", {"integration_short_name": "trello", "api_key": "k"}, format="json"
    ).json()
    return {
        "flow": run.flow,
        "flow_request": FlowRequestFactory(organization=organization),
        "run": run,
        "result": result,
        "credential_id": credential["id"],
        "operation": WebhookTriggerOperationFactory(organization=organization),
    }


def _requests(owned):
    flow, flow_request, run = owned["flow"], owned["flow_request"], owned["run"]
    step = {"name": "Greet", "task_definition": str(task_definition("Format Text").id), "index": 0}
    task = {"integration": "core", "task": "Format Text"}
    document = {"neena_flow": 1, "name": "x", "steps": [{"name": "Greet", "task": task, "index": 0}]}
    return [
        ("get", f"/api/v1/flow_requests/?id={flow_request.id}", None),
        ("put", "/api/v1/flow_requests/", {"id": str(flow_request.id), "request_instructions": "mine now"}),
        ("delete", f"/api/v1/flow_requests/?id={flow_request.id}", None),
        ("get", f"/api/v1/flows/?id={flow.id}", None),
        ("get", f"/api/v1/flows/?id={flow.id}&version=1", None),
        ("get", f"/api/v1/flows/versions?flow_id={flow.id}", None),
        ("get", f"/api/v1/flows/diff?flow_id={flow.id}&from=1&to=1", None),
        ("get", f"/api/v1/flows/export?id={flow.id}", None),
        ("get", f"/api/v1/flows/export?id={flow.id}&version=1", None),
        ("post", f"/api/v1/flows/import?flow_id={flow.id}", document),
        ("put", "/api/v1/flows/", {"id": str(flow.id), "name": "x", "task_operations": [step], "dependencies": []}),
        ("delete", f"/api/v1/flows/?id={flow.id}", None),
        ("get", f"/api/v1/flow_runs/?id={run.id}", None),
        ("get", f"/api/v1/flow_runs/?id={run.id}&task_runs_skip=1&task_runs_limit=1", None),
        ("get", f"/api/v1/flow_runs/with_flow_result?id={run.id}", None),
        ("get", f"/api/v1/flow_runs/all_for_flow_id?flow_id={flow.id}", None),
        ("put", f"/api/v1/flow_runs/approve?flow_run_id={run.id}", None),
        ("put", f"/api/v1/flow_runs/reject?flow_run_id={run.id}", None),
        ("post", f"/api/v1/flow_runs/cancel?flow_run_id={run.id}", None),
        ("post", f"/api/v1/flow_runs/retry?flow_run_id={run.id}", None),
        ("post", f"/api/v1/flow_runs/rerun?flow_run_id={run.id}", None),
        ("post", f"/api/v1/flow_runs/rerun?flow_run_id={run.id}&version=latest", None),
        ("post", f"/api/v1/flow_runs/rerun_from?flow_run_id={run.id}&task_operation_index=0", None),
        ("post", f"/api/v1/flow_runs/retry_failed?flow_id={flow.id}", None),
        ("post", "/api/v1/flow_runs/retry_failed", {"flow_id": str(flow.id)}),
        ("post", "/api/v1/flow_runs/", {"flow": str(flow.id), "flow_request": str(flow_request.id)}),
        ("post", f"/api/v1/flows/execute?flow_id={flow.id}&flow_request_id={flow_request.id}", None),
        ("get", f"/api/v1/flows/generate?flow_request_id={flow_request.id}", None),
        ("get", "/api/v1/flow_results/?integration_entity_id=4242&integration_short_name=zendesk", None),
        ("delete", f"/api/v1/integration_credentials/?id={owned['credential_id']}", None),
        ("get", f"/api/v1/webhook_trigger_operations/?id={owned['operation'].id}", None),
        ("delete", f"/api/v1/webhook_trigger_operations/?id={owned['operation'].id}", None),
    ]


def test_outsider_gets_404_for_every_id_taking_endpoint(owned, outsider_api, api):
    for method, url, body in _requests(owned):
        response = getattr(outsider_api, method)(url, body, format="json")
        assert response.status_code == 404, f"{method.upper()} {url} answered {response.status_code}"

    # Nothing was changed or deleted on the way: the owner still reads everything.
    for method, url, _ in _requests(owned):
        if method == "get" and "/generate" not in url:  # generating is a write, whatever its verb
            assert api.get(url).status_code == 200, url
    assert api.get(f"/api/v1/flow_requests/?id={owned['flow_request'].id}").json()["request_instructions"] != "mine now"


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/flow_requests/all",
        "/api/v1/flows/all",
        "/api/v1/flow_runs/all",
        "/api/v1/flow_runs/preview",
        "/api/v1/integration_credentials/all",
        "/api/v1/webhook_trigger_operations/all",
    ],
)
def test_outsider_lists_are_empty(owned, outsider_api, api, url):
    assert api.get(url).json() != []
    assert outsider_api.get(url).json() == []


def test_outsider_cannot_link_to_a_foreign_flow(owned, outsider_api):
    response = outsider_api.post(
        "/api/v1/flow_requests/", {"request_instructions": "x", "flow": str(owned["flow"].id)}, format="json"
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "flow"]


def test_outsider_cannot_create_in_a_foreign_organization(organization, outsider_api):
    response = outsider_api.post(
        "/api/v1/flow_requests/", {"request_instructions": "x", "organization": str(organization.id)}, format="json"
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "organization"]


def test_a_flow_request_cannot_point_at_a_flow_of_another_organization_of_the_same_user(owner, organization, api):
    other = shared_organization(owner)
    flow = chain_flow(other)

    response = api.post(
        "/api/v1/flow_requests/",
        {"request_instructions": "x", "organization": str(organization.id), "flow": str(flow.id)},
        format="json",
    )

    assert response.status_code == 422
