"""The attempts timeline in run responses: each task run's latest attempts (newest first) and their total, bounded
per task run in the lists and when one run is read, in a fixed number of queries."""

import datetime

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.models import Organization
from apps.integrations.execution import TransientTaskError
from apps.runs.models import FlowRun, TaskRun, TaskRunAttempt
from apps.runs.rendering import rendered_runs_forget
from apps.runs.services.run_creation import flow_execute
from apps.runs.services.step_execution import task_run_execute
from tests.factories import FlowRunFactory
from tests.runs.flows import make_flow, make_request, set_policy, step

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_renderings():
    rendered_runs_forget()
    yield
    rendered_runs_forget()


def _attempts(task_run, count):
    started = timezone.now() - datetime.timedelta(hours=1)
    TaskRunAttempt.objects.bulk_create(
        TaskRunAttempt(
            task_run=task_run,
            number=number,
            status=TaskRunAttempt.Status.RETRIED,
            started_at=started + datetime.timedelta(minutes=number),
            ended_at=started + datetime.timedelta(minutes=number, seconds=1),
            error=f"try {number}",
            idempotency_key=f"{task_run.id}:{number - 1}",
        )
        for number in range(1, count + 1)
    )


def test_a_run_shows_each_retry_of_a_step_as_an_attempt(api, owner, organization, monkeypatch):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps, **options: None)
    flow_run = flow_execute(
        user=owner, flow=make_flow(owner, [step(0, "Format Text", template="x")], []), flow_request=make_request(owner)
    )
    task_run = flow_run.task_runs.get()
    answers = iter([TransientTaskError("503 from the service"), {"text": "x"}])

    def flaky(context, **parameters):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr("apps.integrations.execution.task_implementation", lambda definition: flaky)
    task_run_execute(task_run_id=task_run.id)
    task_run_execute(task_run_id=task_run.id)

    for url in (f"/api/v1/flow_runs/?id={flow_run.id}", "/api/v1/flow_runs/all"):
        body = api.get(url).json()
        (shown,) = body["task_runs"] if isinstance(body, dict) else body[0]["task_runs"]
        assert shown["attempts_total"] == 2
        latest, first = shown["attempts"]
        assert (latest["number"], latest["status"], latest["error"]) == (2, "completed", "")
        retrying = "Retrying after: 503 from the service"
        assert (first["number"], first["status"], first["error"]) == (1, "retried", retrying)
        assert first["idempotency_key"] == f"{task_run.id}:0" and latest["idempotency_key"] == f"{task_run.id}:1"
        assert first["started_at"] and first["ended_at"] and latest["ended_at"]
        assert set(latest) == {"number", "status", "started_at", "ended_at", "error", "idempotency_key"}


@override_settings(NEENA_LIST_TASK_RUN_ATTEMPTS_LIMIT=2, NEENA_DETAIL_TASK_RUN_ATTEMPTS_LIMIT=3)
def test_attempts_are_capped_per_task_run_newest_first_and_counted(api, organization):
    flow_run = FlowRunFactory(organization=organization)
    first, second = flow_run.task_runs.order_by("task_operation_index")[:2]
    _attempts(first, 6)
    _attempts(second, 1)

    (listed,) = api.get("/api/v1/flow_runs/all").json()
    detail = api.get(f"/api/v1/flow_runs/?id={flow_run.id}").json()

    for body, shown in ((listed, [6, 5]), (detail, [6, 5, 4])):
        by_step = {task_run["task_operation_index"]: task_run for task_run in body["task_runs"]}
        assert [attempt["number"] for attempt in by_step[first.task_operation_index]["attempts"]] == shown
        assert by_step[first.task_operation_index]["attempts_total"] == 6
        assert [attempt["number"] for attempt in by_step[second.task_operation_index]["attempts"]] == [1]
        assert by_step[second.task_operation_index]["attempts_total"] == 1


def _count(api, url):
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url)
    assert response.status_code == 200
    return len(queries)


def test_the_number_of_queries_does_not_grow_with_attempts_task_runs_or_runs(api, organization):
    flow_run = FlowRunFactory(organization=organization)
    _attempts(flow_run.task_runs.first(), 1)
    few = _count(api, "/api/v1/flow_runs/all"), _count(api, f"/api/v1/flow_runs/?id={flow_run.id}")
    rendered_runs_forget()
    for _ in range(3):
        other = FlowRunFactory(organization=organization)
        for task_run in other.task_runs.all():
            _attempts(task_run, 4)
    for task_run in flow_run.task_runs.all():
        TaskRunAttempt.objects.filter(task_run=task_run).delete()
        _attempts(task_run, 8)
    TaskRun.objects.filter(flow_run__organization=organization).update(status=TaskRun.Status.IN_PROGRESS)

    many = _count(api, "/api/v1/flow_runs/all"), _count(api, f"/api/v1/flow_runs/?id={flow_run.id}")

    assert many == few == (5, 4)


def test_another_organizations_run_and_its_attempts_are_not_found(outsider_api, organization):
    flow_run = FlowRunFactory(organization=organization)
    _attempts(flow_run.task_runs.first(), 2)

    assert outsider_api.get(f"/api/v1/flow_runs/?id={flow_run.id}").status_code == 404
    assert outsider_api.get("/api/v1/flow_runs/all").json() == []
    assert FlowRun.objects.filter(id=flow_run.id).exists()
