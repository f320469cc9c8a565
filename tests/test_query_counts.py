"""No N+1: every list and detail endpoint runs a fixed number of queries whatever the number of rows.

The numbers are baselines: a change that adds a query per row fails here, and a change that adds a fixed query
updates the number on purpose.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.services import audit_event_record
from apps.flows.models import FlowVersion
from apps.runs.models import TaskRun
from tests.factories import (
    FlowFactory,
    FlowRequestFactory,
    FlowResultFactory,
    FlowRunFactory,
    WebhookTriggerOperationFactory,
    chain_flow,
)

pytestmark = pytest.mark.django_db

# Authentication (the token joined with its user) is the first query of every request.
LIST_BASELINES = {
    "/api/v1/flow_requests/all": (FlowRequestFactory, 2),
    "/api/v1/flows/all": (lambda organization: chain_flow(organization, steps=3), 4),
    # The page, then the runs to render whole, their task runs and the task runs' latest attempts (finished ones come
    # from the cache next time).
    "/api/v1/flow_runs/all": (FlowRunFactory, 5),
    "/api/v1/flow_runs/preview": (FlowRunFactory, 2),
    "/api/v1/webhook_trigger_operations/all": (WebhookTriggerOperationFactory, 2),
    "/api/v1/audit_events/all": (
        lambda organization: audit_event_record(
            organization_id=organization.id, actor=None, actor_email="x", action="a.b", object_type="a", object_id="1"
        ),
        2,
    ),
}
# Lists whose rows hang under one object (a flow's versions): the object's check, then the page.
NESTED_LIST_BASELINES = {"/api/v1/flows/versions?flow_id={flow_id}": 3}


def _count(api, url):
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url)
    assert response.status_code == 200, url
    return len(queries)


@pytest.mark.parametrize("url", list(LIST_BASELINES))
def test_list_query_count_is_fixed(api, organization, url):
    make, expected = LIST_BASELINES[url]
    make(organization=organization)
    first = _count(api, url)
    for _ in range(4):
        make(organization=organization)

    assert _count(api, url) == first == expected


@pytest.mark.parametrize("url", list(NESTED_LIST_BASELINES))
def test_nested_list_query_count_is_fixed(api, owner, organization, url):
    flow = chain_flow(organization, steps=2)
    first = _count(api, url.format(flow_id=flow.id))
    for number in range(2, 6):
        FlowVersion.objects.create(flow=flow, number=number, created_by=owner)

    assert _count(api, url.format(flow_id=flow.id)) == first == NESTED_LIST_BASELINES[url]


def test_catalogue_lists_are_fixed(api):
    assert _count(api, "/api/v1/task_definitions/all?limit=1000") == 2
    assert _count(api, "/api/v1/integrations/all") == 2
    assert _count(api, "/api/v1/webhook_trigger_definitions/all") == 2


def test_detail_query_counts(api, organization):
    flow = chain_flow(organization, steps=10)
    run = FlowRunFactory(organization=organization, flow=flow)
    result = FlowResultFactory(organization=organization, flow_run=run)

    assert _count(api, f"/api/v1/flows/?id={flow.id}") == 4
    assert _count(api, f"/api/v1/flows/?id={flow.id}&version=1") == 5
    # The flow's check, then each version with its steps and edges (three queries whatever their numbers of steps).
    assert _count(api, f"/api/v1/flows/diff?flow_id={flow.id}&from=1&to=1") == 5
    # The flow, the version with its flow, its steps with their tasks and integrations, its edges.
    assert _count(api, f"/api/v1/flows/export?id={flow.id}") == 5
    assert _count(api, f"/api/v1/flows/export?id={flow.id}&version=1") == 5
    # The token, the run, its task runs (with their attempt counts), their latest attempts.
    assert _count(api, f"/api/v1/flow_runs/?id={run.id}") == 4
    assert _count(api, f"/api/v1/flow_runs/with_flow_result?id={run.id}") == 5
    assert (
        _count(
            api,
            f"/api/v1/flow_results/?integration_entity_id={result.integration_entity_id}&integration_short_name=zendesk",
        )
        == 2
    )
    assert _count(api, "/api/v1/users/") == 2


def test_a_list_of_long_runs_reads_only_the_task_runs_it_shows(api, organization):
    """Runs of many steps: the same five queries, and the task runs are read by step range, never all of them."""
    for _ in range(3):
        run = FlowRunFactory(organization=organization, flow=FlowFactory(organization=organization))
        TaskRun.objects.bulk_create(TaskRun(flow_run=run, task_operation_index=index) for index in range(150))

    with CaptureQueriesContext(connection) as queries:
        response = api.get("/api/v1/flow_runs/all")

    assert response.status_code == 200
    assert [len(run["task_runs"]) for run in response.json()] == [100, 100, 100]
    assert len(queries) == 5
    task_runs_sql = queries.captured_queries[-2]["sql"]
    assert '"task_operation_index" < 100' in task_runs_sql
