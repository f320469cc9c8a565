"""Reading runs and results: ``/flow_runs/all``, ``?id=``, ``all_for_flow_id``, ``with_flow_result``, ``preview``,
and ``/flow_results/``."""

import pytest

from tests.factories import FlowResultFactory, FlowRunFactory, chain_flow

pytestmark = pytest.mark.django_db

RUN_FIELDS = {"flow", "flow_request", "status", "approval_status", "triggered_time", "end_time", "triggered_by", "id"}
TASK_RUN_FIELDS = {
    "task_operation_index",
    "status",
    "start_time",
    "task_prep_prompt",
    "task_prep_answer",
    "end_time",
    "id",
    "flow_run",
}


def test_flow_run_has_the_documented_shape(api, organization):
    run = FlowRunFactory(organization=organization)

    response = api.get(f"/api/v1/flow_runs/?id={run.id}")

    assert response.status_code == 200
    body = response.json()
    assert RUN_FIELDS | {"task_runs"} <= set(body)
    assert body["status"] == "completed"
    assert [task_run["task_operation_index"] for task_run in body["task_runs"]] == [0, 1]
    assert set(body["task_runs"][0]) >= TASK_RUN_FIELDS
    assert body["task_runs"][0]["task_prep_answer"]["parameters"][0]["name"] == "template"


def test_all_lists_newest_first(api, organization):
    runs = [FlowRunFactory(organization=organization) for _ in range(3)]

    body = api.get("/api/v1/flow_runs/all?limit=2").json()

    assert [item["id"] for item in body] == [str(runs[2].id), str(runs[1].id)]
    assert all("task_runs" in item for item in body)


def test_preview_has_no_task_runs(api, organization):
    FlowRunFactory(organization=organization)

    (item,) = api.get("/api/v1/flow_runs/preview").json()

    assert set(item) >= RUN_FIELDS
    assert "task_runs" not in item


def test_all_for_flow_id_filters_by_flow(api, organization):
    flow = chain_flow(organization)
    mine = FlowRunFactory(organization=organization, flow=flow)
    FlowRunFactory(organization=organization)

    body = api.get(f"/api/v1/flow_runs/all_for_flow_id?flow_id={flow.id}").json()

    assert [item["id"] for item in body] == [str(mine.id)]


def test_all_for_flow_id_unknown_flow_is_404_and_missing_id_is_422(api):
    assert api.get("/api/v1/flow_runs/all_for_flow_id?flow_id=00000000-0000-0000-0000-000000000000").status_code == 404
    response = api.get("/api/v1/flow_runs/all_for_flow_id")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "flow_id"]


def test_with_flow_result_is_null_without_result(api, organization):
    run = FlowRunFactory(organization=organization)

    body = api.get(f"/api/v1/flow_runs/with_flow_result?id={run.id}").json()

    assert body["id"] == str(run.id)
    assert body["result"] is None


def test_with_flow_result_carries_the_latest_result(api, organization):
    result = FlowResultFactory(organization=organization, body="Replied.")

    body = api.get(f"/api/v1/flow_runs/with_flow_result?id={result.flow_run_id}").json()

    assert body["result"]["body"] == "Replied."
    assert body["result"]["flow_run_id"] == str(result.flow_run_id)
    assert body["result"]["organization_id"] == str(organization.id)
    assert {"trigger_run_id", "integration_entity_id", "id", "created_date", "created_by_email"} <= set(body["result"])


def test_flow_results_returns_the_latest_for_the_entity(api, organization):
    FlowResultFactory(organization=organization, integration_entity_id="77", body="old")
    latest = FlowResultFactory(organization=organization, integration_entity_id="77", body="new")
    FlowResultFactory(organization=organization, integration_entity_id="77", integration_short_name="gmail")

    response = api.get("/api/v1/flow_results/?integration_entity_id=77&integration_short_name=zendesk")

    assert response.status_code == 200
    assert response.json()["id"] == str(latest.id)
    assert response.json()["body"] == "new"


def test_flow_results_404_when_none_and_422_without_parameters(api):
    assert api.get("/api/v1/flow_results/?integration_entity_id=1&integration_short_name=zendesk").status_code == 404
    response = api.get("/api/v1/flow_results/")
    assert response.status_code == 422
    assert {tuple(item["loc"]) for item in response.json()["detail"]} == {
        ("query", "integration_entity_id"),
        ("query", "integration_short_name"),
    }
