"""A step's state changes, each a conditional UPDATE from the status it is expected to be in, so that two jobs can
never both record one: the claim (pending -> preparing, with its lease) and every later move; and what queueing a
step needs (its queue and time limit)."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.integrations.models import TaskDefinition
from apps.runs.models import TaskRun
from apps.runs.queueing import ReadyStep, queue_for
from apps.runs.services.memory import RunMemory, time_limit

Status = TaskRun.Status


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
    ``unchanged_since``, was last modified then)."""
    changes["modified_date"] = timezone.now()
    current = TaskRun.objects.filter(id=task_run.id, status=from_status)
    if unchanged_since is not None:
        current = current.filter(modified_date=unchanged_since)
    moved = current.update(**changes)
    for name, value in changes.items():
        setattr(task_run, name, value)
    return bool(moved)


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
