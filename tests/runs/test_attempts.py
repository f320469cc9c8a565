"""The attempts timeline: every attempt of every task run is kept, as the engine's state changes write it (claim,
end, transient retry, parking for approval, the sweeper's re-queue or failure of a step whose worker died, a run's
retry), with the idempotency key its calls carried. In-process, no broker."""

import importlib
from datetime import timedelta
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.utils import timezone

from apps.accounts.models import Organization
from apps.integrations.execution import TaskError, TransientTaskError
from apps.integrations.models import Notification
from apps.runs import migrations as runs_migrations
from apps.runs.models import FlowRun, TaskRun, TaskRunAttempt
from apps.runs.services import step_execution, transitions
from apps.runs.services.approval import run_approve
from apps.runs.services.control import CALL_INTERRUPTED, WORKER_LOST, run_retry, runs_sweep
from apps.runs.services.run_creation import flow_execute
from apps.runs.services.step_execution import task_run_execute
from tests.runs.flows import make_flow, make_request, run_steps, set_policy, step, waiting_run

pytestmark = pytest.mark.django_db

Attempt = TaskRunAttempt.Status


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps, **options: None)
    monkeypatch.setattr("apps.runs.services.control.send_steps", lambda steps, **options: None)


class _WorkerDied(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the engine catches it."""


def _timeline(task_run):
    return [
        (attempt.number, attempt.status, attempt.idempotency_key, attempt.error)
        for attempt in TaskRunAttempt.objects.filter(task_run=task_run).order_by("number")
    ]


def _after_lease(task_run):
    task_run.refresh_from_db()
    return task_run.lease_expires_at + timedelta(seconds=1)


def test_each_step_of_a_completed_run_has_one_completed_attempt(owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow = make_flow(owner, [step(0, "Format Text", template="a"), step(1, "Format Text", template="b")], [(0, 1)])
    flow_run = run_steps(flow_execute(user=owner, flow=flow, flow_request=make_request(owner)))

    for task_run in flow_run.task_runs.all():
        (attempt,) = TaskRunAttempt.objects.filter(task_run=task_run)
        assert (attempt.number, attempt.status, attempt.error) == (1, Attempt.COMPLETED, "")
        assert attempt.idempotency_key == f"{task_run.id}:0"
        assert attempt.started_at == task_run.start_time
        assert attempt.ended_at == task_run.end_time


def test_transient_retries_are_attempts_with_their_own_keys_and_errors(owner, organization, monkeypatch):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow = make_flow(owner, [step(0, "Format Text", template="x")], [])
    flow_run = flow_execute(user=owner, flow=flow, flow_request=make_request(owner))

    def flaky(context, **parameters):
        raise TransientTaskError("503 from the service")

    monkeypatch.setattr("apps.integrations.execution.task_implementation", lambda definition: flaky)
    task_run = flow_run.task_runs.get()
    for _ in range(4):
        task_run_execute(task_run_id=task_run.id)

    retrying = "Retrying after: 503 from the service"
    assert _timeline(task_run) == [
        (1, Attempt.RETRIED, f"{task_run.id}:0", retrying),
        (2, Attempt.RETRIED, f"{task_run.id}:1", retrying),
        (3, Attempt.RETRIED, f"{task_run.id}:2", retrying),
        (4, Attempt.FAILED, f"{task_run.id}:3", "503 from the service (gave up after 4 attempts)"),
    ]


def test_a_step_parked_for_approval_ends_an_attempt_and_runs_in_a_new_one(owner):
    flow_run = waiting_run(owner)
    parked = flow_run.task_runs.get(task_operation_index=1)
    assert _timeline(parked) == [(1, Attempt.AWAITING_APPROVAL, f"{parked.id}:0", "")]

    run_approve(flow_run=flow_run, user=owner)
    run_steps(flow_run)

    assert [status for _, status, _, _ in _timeline(parked)] == [Attempt.AWAITING_APPROVAL, Attempt.COMPLETED]


def test_a_step_whose_worker_died_is_abandoned_and_requeued_with_the_same_key(owner, organization, monkeypatch):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow = make_flow(owner, [step(0, "Format Text", template="x")], [])
    flow_run = flow_execute(user=owner, flow=flow, flow_request=make_request(owner))
    task_run = flow_run.task_runs.get()

    def dies(*args, **kwargs):
        raise _WorkerDied

    monkeypatch.setattr(step_execution, "task_call", dies)
    with pytest.raises(_WorkerDied):
        task_run_execute(task_run_id=task_run.id)
    monkeypatch.undo()
    monkeypatch.setattr("apps.runs.services.control.send_steps", lambda steps, **options: None)
    assert _timeline(task_run) == [(1, Attempt.RUNNING, f"{task_run.id}:0", "")]

    assert runs_sweep(now=_after_lease(task_run)).requeued_dead == 1
    task_run_execute(task_run_id=task_run.id)

    assert _timeline(task_run) == [
        (1, Attempt.ABANDONED, f"{task_run.id}:0", WORKER_LOST),
        (2, Attempt.COMPLETED, f"{task_run.id}:0", ""),
    ]
    assert not TaskRunAttempt.objects.filter(task_run=task_run, ended_at__isnull=True).exists()


def test_a_side_effect_found_in_progress_after_its_lease_ends_abandoned_and_a_retry_is_a_new_attempt(
    owner, organization, monkeypatch
):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow = make_flow(owner, [step(0, "HTTP Request", method="POST", url="http://127.0.0.1:9/", body={})], [])
    flow_run = flow_execute(user=owner, flow=flow, flow_request=make_request(owner))
    task_run = flow_run.task_runs.get()

    def dies(*args, **kwargs):
        raise _WorkerDied

    monkeypatch.setattr(step_execution, "task_call", dies)
    with pytest.raises(_WorkerDied):
        task_run_execute(task_run_id=task_run.id)
    task_run.refresh_from_db()
    assert task_run.status == TaskRun.Status.IN_PROGRESS

    assert runs_sweep(now=_after_lease(task_run)).failed_dead == 1
    assert _timeline(task_run) == [(1, Attempt.ABANDONED, f"{task_run.id}:0", CALL_INTERRUPTED)]
    task_run.refresh_from_db()
    assert task_run.status == TaskRun.Status.FAILED

    flow_run.refresh_from_db()
    run_retry(flow_run=flow_run, user=owner)
    monkeypatch.setattr(step_execution, "task_call", lambda *args, **kwargs: {"status_code": 200})
    task_run_execute(task_run_id=task_run.id)

    assert [(number, status) for number, status, _, _ in _timeline(task_run)] == [
        (1, Attempt.ABANDONED),
        (2, Attempt.COMPLETED),
    ]


def test_a_run_retry_calls_with_a_new_idempotency_key_so_a_service_honouring_keys_acts_again(
    owner, organization, monkeypatch
):
    """Send Notification honours the key (one notification per key), as a Stripe-like service does. Its call happens
    but the step fails after it; retrying the run must call again, not be answered with the first call's
    notification. Within the retried run a re-queue after a lost worker keeps the key and a transient retry takes
    the next one, as before."""
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow = make_flow(owner, [step(0, "Send Notification", recipient="ann@example.com", message="Refund sent")], [])
    flow_run = flow_execute(user=owner, flow=flow, flow_request=make_request(owner))
    task_run = flow_run.task_runs.get()
    real_call = step_execution.task_call

    def calls_then(error):
        def call(*args, **kwargs):
            real_call(*args, **kwargs)
            raise error

        return call

    monkeypatch.setattr(step_execution, "task_call", calls_then(TaskError("The service's answer could not be read.")))
    task_run_execute(task_run_id=task_run.id)
    flow_run.refresh_from_db()
    assert flow_run.status == FlowRun.Status.FAILED

    run_retry(flow_run=flow_run, user=owner)
    # The retried step calls (a new notification), its worker dies (core steps are re-queued: same key, so the
    # notification is found, not sent again), the service answers 503 (a transient retry: the next key, a new
    # notification), then it completes.
    monkeypatch.setattr(step_execution, "task_call", calls_then(_WorkerDied()))
    with pytest.raises(_WorkerDied):
        task_run_execute(task_run_id=task_run.id)
    assert runs_sweep(now=_after_lease(task_run)).requeued_dead == 1
    monkeypatch.setattr(step_execution, "task_call", calls_then(TransientTaskError("503 from the service")))
    task_run_execute(task_run_id=task_run.id)
    monkeypatch.setattr(step_execution, "task_call", real_call)
    task_run_execute(task_run_id=task_run.id)

    task_run.refresh_from_db()
    assert task_run.status == TaskRun.Status.COMPLETED, task_run.error
    retried = f"{task_run.id}:retry1"
    assert [(number, status, key) for number, status, key, _ in _timeline(task_run)] == [
        (1, Attempt.FAILED, f"{task_run.id}:0"),
        (2, Attempt.ABANDONED, f"{retried}:0"),
        (3, Attempt.RETRIED, f"{retried}:0"),
        (4, Attempt.COMPLETED, f"{retried}:1"),
    ]
    assert sorted(Notification.objects.values_list("idempotency_key", flat=True)) == sorted(
        [f"{task_run.id}:0", f"{retried}:0", f"{retried}:1"]
    )


def test_a_step_cancelled_at_its_claim_ends_its_attempt_cancelled(owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow_run = flow_execute(
        user=owner, flow=make_flow(owner, [step(0, "Format Text", template="x")], []), flow_request=make_request(owner)
    )
    flow_run.__class__.objects.filter(id=flow_run.id).update(status="cancelled")
    task_run = flow_run.task_runs.get()

    task_run_execute(task_run_id=task_run.id)

    assert _timeline(task_run) == [(1, Attempt.CANCELLED, f"{task_run.id}:0", "")]


def test_the_claim_and_its_attempt_are_written_together_or_not_at_all(owner, organization, monkeypatch):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow_run = flow_execute(
        user=owner, flow=make_flow(owner, [step(0, "Format Text", template="x")], []), flow_request=make_request(owner)
    )
    task_run = flow_run.task_runs.get()

    def refused(*args, **kwargs):
        raise RuntimeError("the attempt could not be written")

    monkeypatch.setattr(transitions, "_attempt_start", refused)
    with pytest.raises(RuntimeError):
        task_run_execute(task_run_id=task_run.id)

    task_run.refresh_from_db()
    assert task_run.status == TaskRun.Status.PENDING  # not claimed without its attempt: a worker may claim it again
    assert not TaskRunAttempt.objects.filter(task_run=task_run).exists()


def _backfill_migration():
    """The data migration giving existing task runs their attempt, found by name (migrations may be renumbered)."""
    (name,) = [
        path.stem for path in Path(runs_migrations.__file__).parent.glob("*.py") if path.stem.endswith("_attempts_data")
    ]
    return importlib.import_module(f"apps.runs.migrations.{name}")


def test_task_runs_started_before_attempts_were_kept_get_one_from_their_row(owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow = make_flow(owner, [step(index, "Format Text", template="x") for index in range(4)], [])
    flow_run = flow_execute(user=owner, flow=flow, flow_request=make_request(owner))
    done, failed, running, waiting = flow_run.task_runs.order_by("task_operation_index")
    started = timezone.now() - timedelta(minutes=5)
    ended = started + timedelta(seconds=3)
    TaskRun.objects.filter(id=done.id).update(status="completed", start_time=started, end_time=ended)
    TaskRun.objects.filter(id=failed.id).update(
        status="failed", start_time=started, end_time=ended, error="boom", attempt=2
    )
    TaskRun.objects.filter(id=running.id).update(status="in_progress", start_time=started)
    TaskRun.objects.filter(id=waiting.id).update(status="pending", start_time=None)
    migration = _backfill_migration()

    migration.forwards(django_apps, None)
    migration.forwards(django_apps, None)  # run twice (a retried deployment): still one each

    def only(task_run):
        (attempt,) = TaskRunAttempt.objects.filter(task_run=task_run)
        return (
            attempt.number,
            attempt.status,
            attempt.started_at,
            attempt.ended_at,
            attempt.error,
            attempt.idempotency_key,
        )

    assert only(done) == (1, Attempt.COMPLETED, started, ended, "", f"{done.id}:0")
    assert only(failed) == (1, Attempt.FAILED, started, ended, "boom", f"{failed.id}:2")
    assert only(running) == (1, Attempt.RUNNING, started, None, "", f"{running.id}:0")
    assert not TaskRunAttempt.objects.filter(task_run=waiting).exists()

    # The running one's worker is gone: the sweeper ends the backfilled attempt, and the next claim is attempt 2.
    TaskRun.objects.filter(id=running.id).update(lease_expires_at=started)
    runs_sweep()
    assert [status for _, status, _, _ in _timeline(running)] == [Attempt.ABANDONED]

    migration.backwards(django_apps, None)
    assert not TaskRunAttempt.objects.filter(task_run__flow_run=flow_run).exists()
