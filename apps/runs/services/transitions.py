"""A step's state changes, each a conditional UPDATE from the status it is expected to be in, so that two jobs can
never both record one: the claim (pending -> preparing, with its lease) and every later move; and what queueing a
step needs (its queue and time limit).

Each move also keeps the step's timeline (``TaskRunAttempt``), in the move's own transaction: the claim starts an
attempt, and a move out of preparing or in progress to anything else ends it (``ATTEMPT_END``). No network call is
made here.
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.integrations.models import TaskDefinition
from apps.runs.models import TaskRun, TaskRunAttempt
from apps.runs.queueing import ReadyStep, queue_for
from apps.runs.services.memory import RunMemory, time_limit

Status = TaskRun.Status
AttemptStatus = TaskRunAttempt.Status

# How a move out of preparing or in progress ends the step's attempt, by the status it moves the step to. Back to
# pending from there is a transient error's retry (the sweeper's re-queue says "abandoned" itself).
ATTEMPT_END = {
    Status.COMPLETED: AttemptStatus.COMPLETED,
    Status.FAILED: AttemptStatus.FAILED,
    Status.CANCELLED: AttemptStatus.CANCELLED,
    Status.AWAITING_APPROVAL: AttemptStatus.AWAITING_APPROVAL,
    Status.PENDING: AttemptStatus.RETRIED,
}


def idempotency_key_of(task_run: TaskRun) -> str:
    """The key an attempt's side-effecting calls carry: the step, the run retries that started it over, and its
    transient retries so far. A re-queue after a lost worker keeps it, so a service honouring it finds the call made
    before the worker died; a transient retry (``attempt``) and a run retry (``run_retries``, which a retry's reset
    of ``attempt`` to 0 must not undo) change it, so a service honouring keys is really called again rather than
    answering with the cached result of the first attempt. Before any run retry the key is ``<step>:<attempt>``,
    as it always was, so steps in flight when this came in keep theirs."""
    if task_run.run_retries:
        return f"{task_run.id}:retry{task_run.run_retries}:{task_run.attempt}"
    return f"{task_run.id}:{task_run.attempt}"


def time_limit_of(definition: TaskDefinition) -> int:
    """The task's time limit in seconds."""
    return time_limit(definition.retry_policy)


def ready_step(task_run: TaskRun) -> ReadyStep:
    """The queueing facts of a step: its id, its queue (by integration) and its time limit. A step left without its
    operation (removed by an edit before flows had versions) goes to the orchestration queue, whose job fails it."""
    if task_run.task_operation is None:
        return ReadyStep(task_run.id, settings.NEENA_ORCHESTRATION_QUEUE, time_limit({}))
    definition = task_run.task_operation.task_definition
    return ReadyStep(task_run.id, queue_for(definition.integration.short_name), time_limit_of(definition))


def step_lease(definition: TaskDefinition, *, preparing: bool = False) -> Any:
    """How long the worker holds the step from its claim: its time limit and a grace, plus the model's whole budget
    when it is still to be prepared with the llm preparer."""
    seconds = time_limit_of(definition) + settings.NEENA_STEP_LEASE_GRACE_SECONDS
    if preparing and settings.NEENA_PREPARER == "llm":
        seconds += int(settings.NEENA_LLM_TIMEOUT_SECONDS * (settings.NEENA_LLM_MAX_RETRIES + 1))
    return timezone.now() + timedelta(seconds=seconds)


def step_move(task_run: TaskRun, from_status: str, *, unchanged_since: Any = None, **changes: Any) -> bool:
    """A conditional transition: applies the changes only if the step is still in ``from_status`` (and, with
    ``unchanged_since``, was last modified then).

    The claim (pending -> preparing) starts an attempt; a move from preparing or in progress to another status ends
    the running one as ``ATTEMPT_END`` maps the new status (the sweeper's moves are ``step_abandon``); both in the
    move's transaction, only when the move happened.
    """
    changes["modified_date"] = timezone.now()
    current = TaskRun.objects.filter(id=task_run.id, status=from_status)
    if unchanged_since is not None:
        current = current.filter(modified_date=unchanged_since)
    to_status = changes.get("status", from_status)
    starts = from_status == Status.PENDING and to_status == Status.PREPARING
    ends = ATTEMPT_END.get(to_status) if from_status in TaskRun.RUNNING else None
    if not starts and not ends:
        moved = current.update(**changes)
    else:
        with transaction.atomic():
            moved = current.update(**changes)
            if moved and ends:
                _attempt_end(
                    task_run,
                    ends,
                    error=changes.get("error", ""),
                    now=changes.get("end_time") or changes["modified_date"],
                )
            if moved and starts:
                _attempt_start(task_run, now=changes.get("start_time") or changes["modified_date"])
    for name, value in changes.items():
        setattr(task_run, name, value)
    return bool(moved)


def step_abandon(task_run: TaskRun, *, now: Any, reason: str, **changes: Any) -> bool:
    """The sweeper's move of a step whose lease expired before ``now`` (its worker is gone), if it is still so: the
    changes apply and its attempt ends "abandoned" with ``reason``, in one transaction."""
    with transaction.atomic():
        moved = TaskRun.objects.filter(id=task_run.id, status=task_run.status, lease_expires_at__lt=now).update(
            modified_date=now, **changes
        )
        if moved:
            _attempt_end(task_run, AttemptStatus.ABANDONED, error=reason, now=now)
    return bool(moved)


def _attempt_start(task_run: TaskRun, *, now: Any) -> None:
    """The claimed step's next attempt, numbered after its last one in the INSERT itself (no read first: the claim
    is exclusive, so no other attempt of the step starts meanwhile)."""
    last = (
        TaskRunAttempt.objects.filter(task_run_id=task_run.id)
        .order_by()
        .values("task_run_id")
        .annotate(last=Max("number"))
    )
    TaskRunAttempt.objects.create(
        task_run_id=task_run.id,
        number=Coalesce(Subquery(last.values("last")), 0) + 1,
        status=AttemptStatus.RUNNING,
        started_at=now,
        idempotency_key=idempotency_key_of(task_run),
    )


def _attempt_end(task_run: TaskRun, status: str, *, error: str, now: Any) -> None:
    """Ends the step's running attempt (there is at most one: attempts start only with a claim)."""
    TaskRunAttempt.objects.filter(task_run_id=task_run.id, ended_at__isnull=True).update(
        status=status, ended_at=now, error=error, modified_date=now
    )


def step_claim(task_run: TaskRun, memory: RunMemory, **changes: Any) -> bool:
    """The claim itself: pending -> preparing with the lease the step's definition asks for, if the step is still
    pending and unchanged since it was read (every change of a step sets ``modified_date``: a step that ran elsewhere
    and came back to pending, for a retry or after an approval, is not claimed from an old reading). Also gives the
    step's run and operation what the job remembers (request, organization, definition)."""
    task_run.flow_run.flow_request = memory.flow_request
    task_run.flow_run.organization = memory.organization
    operation = task_run.task_operation
    now = timezone.now()
    if operation is None:
        lease = now + timedelta(seconds=settings.NEENA_STEP_LEASE_GRACE_SECONDS)
    else:
        operation.task_definition = memory.definition(operation.task_definition_id)
        lease = step_lease(operation.task_definition, preparing=not task_run.approved_at)
    return step_move(
        task_run,
        Status.PENDING,
        unchanged_since=task_run.modified_date,
        status=Status.PREPARING,
        start_time=now,
        lease_expires_at=lease,
        **changes,
    )
