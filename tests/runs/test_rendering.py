"""Finished runs are rendered once and served from the cache (apps/runs/rendering.py): the same bytes as a fresh
rendering, fewer queries, and a fresh rendering as soon as the run changes."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.runs.models import FlowRun, TaskRun
from apps.runs.rendering import rendered_runs_forget
from tests.factories import FlowRunFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/flow_runs/all?limit=100"


@pytest.fixture(autouse=True)
def empty_cache():
    rendered_runs_forget()
    yield
    rendered_runs_forget()


def _get(api, url=URL, **headers):
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url, **headers)
    assert response.status_code == 200
    return response.content, len(queries)


def test_finished_runs_come_from_the_cache_with_the_same_bytes(api, organization):
    FlowRunFactory.create_batch(3, organization=organization)
    FlowRunFactory(organization=organization, status=FlowRun.Status.IN_PROGRESS)

    fresh, fresh_queries = _get(api)
    cached, cached_queries = _get(api)

    assert cached == fresh
    assert fresh_queries == 5  # the token, the page, the runs to render, their task runs and the task runs' attempts
    assert cached_queries == 5  # the running one is still rendered
    assert [run["status"] for run in json.loads(cached)].count("completed") == 3


def test_a_page_of_finished_runs_reads_no_task_runs_the_second_time(api, organization):
    FlowRunFactory.create_batch(4, organization=organization)

    first, _ = _get(api)
    again, queries = _get(api)

    assert again == first
    assert queries == 2  # the token, the page


def test_a_run_that_changes_is_rendered_again(api, organization, owner):
    run = FlowRunFactory(organization=organization, status=FlowRun.Status.FAILED, status_reason="Boom.")
    before, _ = _get(api)

    run.task_runs.update(error="Fixed by hand.")
    run.status_reason = "Edited."
    run.save()  # any save of the run moves its modified_date
    after, _ = _get(api)

    (rendered,) = json.loads(after)
    assert rendered["status_reason"] == "Edited."
    assert {task_run["error"] for task_run in rendered["task_runs"]} == {"Fixed by hand."}
    assert after != before


def test_a_step_ending_after_its_run_was_cancelled_is_shown(api, organization):
    """Cancelling lets a running step finish: it changes a task run, not the run."""
    run = FlowRunFactory(organization=organization, status=FlowRun.Status.CANCELLED)
    running = run.task_runs.order_by("task_operation_index").first()
    TaskRun.objects.filter(id=running.id).update(status=TaskRun.Status.IN_PROGRESS, result=None)
    before, _ = _get(api)

    TaskRun.objects.filter(id=running.id).update(
        status=TaskRun.Status.COMPLETED, result={"text": "done"}, modified_date=timezone.now()
    )
    after, _ = _get(api)

    statuses = [task_run["status"] for task_run in json.loads(after)[0]["task_runs"]]
    assert statuses[0] == "completed"
    assert after != before


def test_an_indented_answer_reads_the_cached_runs_back(api, organization):
    FlowRunFactory(organization=organization)
    compact, _ = _get(api)

    indented, _ = _get(api, HTTP_ACCEPT="application/json; indent=2")

    assert json.loads(indented) == json.loads(compact)
    assert b'\n  {\n    "' in indented


def test_runs_of_one_flow_use_the_same_cache(api, organization):
    run = FlowRunFactory(organization=organization)
    url = f"/api/v1/flow_runs/all_for_flow_id?flow_id={run.flow_id}"

    first, first_queries = _get(api, url)
    again, queries = _get(api, url)

    assert again == first
    assert queries == first_queries - 3  # no run read whole, no task runs, no attempts


def test_an_outsider_never_sees_a_cached_run(api, outsider_api, organization):
    FlowRunFactory(organization=organization)
    _get(api)

    content, _ = _get(outsider_api)

    assert json.loads(content) == []
