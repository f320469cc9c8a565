"""Failure drills for the engine: a worker killed mid-run, a lost message, a worker dying between a step's end and
the next steps, a concurrent approve and reject.

After each, the run finishes, every step ran to completion once, and no side effect happened twice.
"""

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.accounts.models import Membership, Organization
from apps.core.exceptions import ConflictError
from apps.integrations.models import Notification
from apps.runs.models import ApprovalDecision, FlowRun, TaskRun
from apps.runs.services.approval import run_approve, run_reject
from apps.runs.services.control import runs_sweep
from apps.runs.services.run_creation import flow_execute
from apps.runs.services.step_execution import task_run_execute
from tests.runs.flows import make_flow, make_request, set_policy, step
from tests.workers import CeleryWorker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _long_chain(owner, length):
    """Format Text and Send Notification steps taking turns, each depending on the one before."""
    steps = [
        step(index, "Format Text", template=f"update {index}")
        if index % 2 == 0
        else step(
            index, "Send Notification", recipient="ops@example.com", message=f"{{{{ steps.{index - 1}.result.text }}}}"
        )
        for index in range(length)
    ]
    return make_flow(owner, steps, [(index, index + 1) for index in range(length - 1)])


def _completed(flow_run):
    return TaskRun.objects.filter(flow_run=flow_run, status=TaskRun.Status.COMPLETED).count()


def test_killed_worker_the_run_resumes_and_no_side_effect_repeats(owner, organization, redis_server):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    length = 160
    flow = _long_chain(owner, length)
    # One broker round trip per step (no steps run in place), so the run is long enough to be killed in the middle.
    slow = {"NEENA_INLINE_STEP_LIMIT": "0"}
    doomed = CeleryWorker(broker_url=redis_server.url, name="doomed", concurrency=1, environment=slow)
    try:
        flow_run = flow_execute(user=owner, flow=flow, flow_request=make_request(owner))
        wait_for(
            lambda: _completed(flow_run) >= 20, timeout=20, message="the run to get going: " + doomed.output()[-3000:]
        )
        doomed.kill()
    finally:
        doomed.stop()
    done_at_kill = _completed(flow_run)
    assert done_at_kill < length, "the run finished before the kill; make the chain longer"

    survivor = CeleryWorker(broker_url=redis_server.url, name="survivor", concurrency=2)
    try:
        # The sweeper runs on beat every few seconds; here it is called with a clock moved past every lease.
        later = timezone.now() + timedelta(seconds=600)

        def finished():
            runs_sweep(now=later)
            flow_run.refresh_from_db()
            return flow_run.status in FlowRun.TERMINAL

        wait_for(finished, timeout=120, interval=0.5, message="the run to finish after the kill")
    finally:
        survivor.stop()

    assert flow_run.status == FlowRun.Status.COMPLETED, flow_run.status_reason
    assert _completed(flow_run) == length
    notification_steps = length // 2
    assert Notification.objects.filter(flow_run=flow_run).count() == notification_steps
    assert Notification.objects.values("idempotency_key").distinct().count() == notification_steps


@pytest.mark.usefixtures("celery_worker")
def test_lost_message_is_sent_again_by_the_sweeper(owner, organization, monkeypatch):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow = make_flow(owner, [step(0, "Format Text", template="a"), step(1, "Format Text", template="b")], [(0, 1)])
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: None)  # the message is lost

    flow_run = flow_execute(user=owner, flow=flow, flow_request=make_request(owner))

    monkeypatch.undo()
    assert TaskRun.objects.get(flow_run=flow_run, task_operation_index=0).status == TaskRun.Status.PENDING
    report = runs_sweep(now=timezone.now() + timedelta(seconds=settings.NEENA_REQUEUE_AFTER_SECONDS + 1))
    assert report.requeued_lost == 1
    wait_for(lambda: FlowRun.objects.get(id=flow_run.id).status == FlowRun.Status.COMPLETED, timeout=30)


class _WorkerDied(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the engine catches it."""


@pytest.mark.parametrize("shape", ["chain", "join"])
@pytest.mark.usefixtures("celery_worker")
def test_a_worker_dying_between_a_step_end_and_the_next_steps_is_caught_by_the_sweeper(
    owner, organization, monkeypatch, shape
):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    steps = [step(index, "Format Text", template=f"line {index}") for index in range(3)]
    edges = [(0, 1), (1, 2)] if shape == "chain" else [(0, 2), (1, 2)]
    flow = make_flow(owner, steps, edges)
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: None)
    flow_run = flow_execute(user=owner, flow=flow, flow_request=make_request(owner))
    step_of = {task_run.task_operation_index: task_run.id for task_run in TaskRun.objects.filter(flow_run=flow_run)}
    if shape == "join":
        task_run_execute(task_run_id=step_of[1])
    # Step 0's end is committed; the worker dies before readying what comes next.
    monkeypatch.setattr("apps.runs.services.step_ends.ready_after", _die)
    with pytest.raises(_WorkerDied):
        task_run_execute(task_run_id=step_of[0])
    monkeypatch.undo()
    assert TaskRun.objects.get(id=step_of[0]).status == TaskRun.Status.COMPLETED
    assert TaskRun.objects.get(id=step_of[2]).enqueued_at is None

    assert runs_sweep().advanced_stalled == 0  # too soon to tell from a run that is just slow
    report = runs_sweep(now=timezone.now() + timedelta(seconds=settings.NEENA_REQUEUE_AFTER_SECONDS + 1))

    assert report.advanced_stalled == 1
    wait_for(lambda: FlowRun.objects.get(id=flow_run.id).status == FlowRun.Status.COMPLETED, timeout=30)
    assert _completed(FlowRun.objects.get(id=flow_run.id)) == 3


def _die(*args, **kwargs):
    raise _WorkerDied


def _parked_run(owner):
    flow = make_flow(owner, [step(0, "Send Notification", 'Tell ann@example.com "hi"')], [])
    flow_run = flow_execute(user=owner, flow=flow, flow_request=make_request(owner))
    task_run_execute(task_run_id=flow_run.task_runs.get().id)
    flow_run.refresh_from_db()
    assert flow_run.approval_status == FlowRun.ApprovalStatus.PENDING
    return flow_run


@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_approve_and_reject_exactly_one_wins(owner, teammate, monkeypatch, attempt):
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: None)
    Membership.objects.filter(user=teammate).update(role=Membership.Role.APPROVER)
    flow_run = _parked_run(owner)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def decide(name, service, user):
        try:
            barrier.wait()
            service(flow_run=FlowRun.objects.get(id=flow_run.id), user=user)
            outcomes[name] = "won"
        except ConflictError:
            outcomes[name] = "conflict"
        finally:
            connection.close()

    threads = [
        threading.Thread(target=decide, args=("approve", run_approve, owner)),
        threading.Thread(target=decide, args=("reject", run_reject, teammate)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes.values()) == ["conflict", "won"], outcomes
    flow_run.refresh_from_db()
    expected = FlowRun.ApprovalStatus.APPROVED if outcomes["approve"] == "won" else FlowRun.ApprovalStatus.REJECTED
    assert flow_run.approval_status == expected
    assert ApprovalDecision.objects.filter(flow_run=flow_run).count() == 1
