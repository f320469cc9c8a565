"""Advancing a run's DAG: which steps can run once others have ended, and when the run itself ends.

A completion commits its step's end first and then examines its successors (``ready_after``), without the run's lock:
of two branches ending at once the later check sees both, so joins fire and parallel branches never lose a step, and
a step readied twice is still claimed once. A worker dying between the two leaves the run to the sweeper
(``flow_runs_stalled``). Failures, approvals, retries and the sweeper examine the whole run under its row lock
(``flow_run_advance``).
"""

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q
from django.utils import timezone

from apps.flows.dag import descendants
from apps.runs.models import FlowRun, TaskRun
from apps.runs.queueing import ReadyStep
from apps.runs.services.memory import Edge, RunMemory
from apps.runs.services.results import flow_result_finalize
from apps.runs.services.transitions import step_claim

Status = TaskRun.Status
RunStatus = FlowRun.Status


@dataclass
class StepOutcome:
    """What a job leaves to do: steps now ready to be queued, steps readied and already claimed for this job to run
    next (``claimed``), and a retry of this one after ``retry_in`` seconds."""

    ready: list[ReadyStep] = field(default_factory=list)
    claimed: list[TaskRun] = field(default_factory=list)
    retry: ReadyStep | None = None
    retry_in: float = 0.0


def ready_steps(flow_run: FlowRun, memory: RunMemory) -> list[ReadyStep]:
    """Marks the run's runnable steps as queued and returns them; call with the run's row locked.

    Runnable: pending, not queued yet, every predecessor completed. Pending steps below a failed step are skipped.
    When every step has ended, the run ends too. It runs after a failure, an approval, a retry and for the sweeper
    (a completion uses ``ready_after``); it reads each step's index, id, status and whether it is queued (no JSON,
    no joins).
    """
    edges = memory.edges
    rows = flow_run.task_runs.annotate(
        queued=ExpressionWrapper(Q(enqueued_at__isnull=False), output_field=BooleanField())
    ).values_list("task_operation_index", "id", "status", "queued")
    ids = {index: task_run_id for index, task_run_id, _, _ in rows}
    status = {index: value for index, _, value, _ in rows}
    waiting = {index for index, _, value, queued in rows if value == Status.PENDING and not queued}
    doomed = sorted(waiting & descendants(edges, [index for index, value in status.items() if value == Status.FAILED]))
    if doomed:
        flow_run.task_runs.filter(task_operation_index__in=doomed).update(
            status=Status.SKIPPED, error="An earlier step failed.", modified_date=timezone.now()
        )
        status.update(dict.fromkeys(doomed, Status.SKIPPED))
        waiting.difference_update(doomed)

    blocked = {target for source, target in edges if status.get(source) != Status.COMPLETED}
    ready = sorted(waiting - blocked)
    if ready:
        flow_run.task_runs.filter(task_operation_index__in=ready, status=Status.PENDING).update(
            enqueued_at=timezone.now()
        )
        return [memory.ready_step(index, ids[index]) for index in ready]
    if all(value in TaskRun.TERMINAL for value in status.values()):
        flow_run_finish(flow_run, edges)
    return []


def ready_after(flow_run: FlowRun, memory: RunMemory, completed: int, may_claim: int) -> StepOutcome:
    """``ready_steps`` once step ``completed`` has completed (and committed), without the run's lock, reading only
    what that can have changed: which of its successors now have every predecessor completed, and, when it has none,
    whether every step has ended. A chain's next step needs no read of states at all, and a fan-out's join one read
    of the unfinished steps' indices per branch.

    When ``may_claim``, the first readied ``core`` step is claimed for the caller to run next (in ``claimed``): the
    write that readies it claims it, so running a step in place costs no claim of its own. Only one: the others are
    queued, so that several workers share them and a cancel stops those not started. A join that can no longer run
    (a predecessor failed, was skipped or cancelled) sends the run to ``flow_run_advance``, which skips it and ends
    the run when nothing else is left.
    """
    successors = memory.successors(completed)
    if not successors:
        if not flow_run.task_runs.exclude(status__in=TaskRun.TERMINAL).exists():
            flow_run_finish(flow_run, memory.edges)
        return StepOutcome()
    candidates = successors
    if any(len(memory.predecessors(successor)) > 1 for successor in successors):
        # A join: are its other predecessors completed? (A fan-out's branches each read the unfinished steps once.)
        unfinished = dict(
            flow_run.task_runs.exclude(status=Status.COMPLETED).values_list("task_operation_index", "status")
        )
        candidates = [
            successor for successor in successors if unfinished.keys().isdisjoint(memory.predecessors(successor))
        ]
        if any(
            unfinished.get(source) in TaskRun.TERMINAL
            for successor in successors
            for source in memory.predecessors(successor)
        ):
            return StepOutcome(ready=flow_run_advance(flow_run_id=flow_run.id))
    if not candidates:
        return StepOutcome()
    ready = memory.unstarted(candidates)
    steps = [memory.ready_step(task_run.task_operation_index, task_run.id) for task_run in ready]
    here = [
        task_run
        for task_run, step in zip(ready, steps, strict=True)
        if step.queue == settings.NEENA_ORCHESTRATION_QUEUE and task_run.task_operation is not None
    ][: min(1, may_claim)]
    now = timezone.now()
    flow_run.task_runs.filter(
        id__in=[task_run.id for task_run in ready if task_run not in here], status=Status.PENDING
    ).update(enqueued_at=now)
    for task_run in here:
        task_run.flow_run = flow_run
    claimed = [task_run for task_run in here if step_claim(task_run, memory, enqueued_at=now)]
    return StepOutcome(ready=[step for step in steps if step.task_run_id not in {t.id for t in here}], claimed=claimed)


@transaction.atomic
def flow_run_finish(flow_run: FlowRun, edges: list[Edge]) -> None:
    """Ends the run once every step has ended: failed with the first failure's error, else completed with its result
    (in the same transaction). A conditional UPDATE: whoever finds the run ended first ends it, once; a cancelled run
    stays cancelled."""
    first_failed = flow_run.task_runs.filter(status=Status.FAILED).order_by("task_operation_index").first()
    now = timezone.now()
    ending = {
        "status": RunStatus.FAILED if first_failed else RunStatus.COMPLETED,
        "status_reason": first_failed.error if first_failed else "",
        "end_time": now,
    }
    if (
        not FlowRun.objects.filter(id=flow_run.id)
        .exclude(status__in=FlowRun.TERMINAL)
        .update(modified_date=now, **ending)
    ):
        return
    for name, value in ending.items():
        setattr(flow_run, name, value)
    if not first_failed:
        sources = {source for source, _ in edges}
        finals = flow_run.task_runs.exclude(task_operation_index__in=sources).order_by("task_operation_index")
        flow_result_finalize(flow_run=flow_run, final_task_runs=finals)


def flow_run_advance(*, flow_run_id: UUID) -> list[ReadyStep]:
    """Locks the run and readies what can run next (returned, not sent: the caller sends or runs them)."""
    with transaction.atomic():
        flow_run = FlowRun.objects.select_for_update().get(id=flow_run_id)
        if flow_run.status in FlowRun.TERMINAL:
            return []
        return ready_steps(flow_run, RunMemory(flow_run))


def task_runs_unclaimed(*, older_than: Any) -> list[TaskRun]:
    """Queued steps no worker has claimed since ``older_than``: their message was lost (or the queue is slow)."""
    return list(
        TaskRun.objects.filter(status=Status.PENDING, enqueued_at__lt=older_than)
        .filter(Q(flow_run__status=RunStatus.IN_PROGRESS) | Q(flow_run__status=RunStatus.PENDING))
        .select_related("task_operation__task_definition__integration")
    )


def flow_runs_stalled(*, older_than: Any) -> list[UUID]:
    """Runs in progress with no step running, queued or waiting for approval, and no step change since
    ``older_than``: the worker that was to examine them after a step's end died first."""
    active = TaskRun.objects.filter(flow_run=OuterRef("pk")).filter(
        Q(status__in=[*TaskRun.RUNNING, Status.AWAITING_APPROVAL]) | Q(status=Status.PENDING, enqueued_at__isnull=False)
    )
    recent = TaskRun.objects.filter(flow_run=OuterRef("pk"), modified_date__gte=older_than)
    return list(
        FlowRun.objects.filter(status=RunStatus.IN_PROGRESS)
        .exclude(Exists(active))
        .exclude(Exists(recent))
        .values_list("id", flat=True)
    )
