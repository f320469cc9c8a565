"""Running flows: creating runs, executing one step per job, and advancing the DAG exactly once per step.

The graph state lives in the database. A step is claimed with a conditional UPDATE (pending -> preparing), so a
redelivered or duplicated job does nothing. When a step ends, the run's row is locked while its successors are
examined: a successor is readied (``enqueued_at`` set) by the one completion that finds all its predecessors done,
so joins fire once and parallel branches never lose a step.
"""

import json
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import Organization, User
from apps.core.exceptions import InputValidationError
from apps.credentials.services.access import credential_for_step
from apps.flows.dag import topological_order
from apps.flows.models import Flow, FlowRequest
from apps.integrations.execution import TaskContext, TaskError, TransientTaskError, task_call
from apps.integrations.models import TaskDefinition
from apps.runs.models import FlowRun, TaskRun
from apps.runs.queueing import ReadyStep, queue_for, send_steps
from apps.runs.services.preparation import PreparationError, StepInputs, step_prepare_configured
from apps.runs.services.results import flow_result_finalize, integration_entity

logger = logging.getLogger(__name__)

Status = TaskRun.Status
RunStatus = FlowRun.Status


@dataclass
class StepOutcome:
    """What a job leaves to do: steps now ready to run, and a retry of this one after ``retry_in`` seconds."""

    ready: list[ReadyStep] = field(default_factory=list)
    retry: ReadyStep | None = None
    retry_in: float = 0.0


# --- Creating runs -------------------------------------------------------------------------------------------------


def _time_limit(definition: TaskDefinition) -> int:
    return int(definition.retry_policy.get("time_limit_seconds", 60))


def ready_step(task_run: TaskRun) -> ReadyStep:
    """The queueing facts of a step: its id, its queue (by integration) and its time limit."""
    definition = task_run.task_operation.task_definition  # type: ignore[union-attr]
    return ReadyStep(task_run.id, queue_for(definition.integration.short_name), _time_limit(definition))


def _send_on_commit(steps: list[ReadyStep]) -> None:
    """Jobs are sent only once the transaction that readied them has committed: a worker never looks for a row that
    is not there yet."""
    if steps:
        transaction.on_commit(lambda: send_steps(steps))


@transaction.atomic
def flow_execute(
    *, user: User | None, flow: Flow, flow_request: FlowRequest, triggered_by: str = "", rerun_of: FlowRun | None = None
) -> FlowRun:
    """Creates the run (pending) and a pending task run per step, then queues the first steps after commit.

    Under the ``always`` approval policy the run waits for approval before any step is queued.
    """
    if flow.organization_id != flow_request.organization_id:
        raise InputValidationError.single(
            ["query", "flow_request_id"], "The flow request belongs to another organization than the flow.", "mismatch"
        )
    organization = Organization.objects.get(id=flow.organization_id)
    now = timezone.now()
    parks = organization.approval_policy == Organization.ApprovalPolicy.ALWAYS
    flow_run = FlowRun.objects.create(
        organization=organization,
        flow=flow,
        flow_request=flow_request,
        status=RunStatus.AWAITING_APPROVAL if parks else RunStatus.PENDING,
        approval_status=FlowRun.ApprovalStatus.PENDING if parks else None,
        approval_requested_at=now if parks else None,
        triggered_time=now,
        triggered_by=triggered_by or (user.email if user else ""),
        rerun_of=rerun_of,
        created_by_email=user.email if user else triggered_by,
        modified_by_email=user.email if user else triggered_by,
    )
    TaskRun.objects.bulk_create(
        [
            TaskRun(flow_run=flow_run, task_operation=operation, task_operation_index=operation.index)
            for operation in flow.task_operations.all()
        ]
    )
    if not parks:
        _send_on_commit(_ready_steps(flow_run))
    return flow_run


# --- Advancing the DAG -----------------------------------------------------------------------------------------------


def _edges(flow_run: FlowRun) -> list[tuple[int, int]]:
    return list(flow_run.flow.dependencies.values_list("source_task_operation", "target_task_operation"))


def _descendants(edges: Iterable[tuple[int, int]], roots: Iterable[int]) -> set[int]:
    successors: dict[int, list[int]] = {}
    for source, target in edges:
        successors.setdefault(source, []).append(target)
    found: set[int] = set()
    stack = list(roots)
    while stack:
        for successor in successors.get(stack.pop(), []):
            if successor not in found:
                found.add(successor)
                stack.append(successor)
    return found


def _ready_steps(flow_run: FlowRun) -> list[ReadyStep]:
    """Marks the run's runnable steps as queued and returns them; call with the run's row locked.

    Runnable: pending, not queued yet, every predecessor completed. Pending steps below a failed step are skipped.
    When every step has ended, the run ends too.
    """
    task_runs = {
        task_run.task_operation_index: task_run
        for task_run in flow_run.task_runs.select_related("task_operation__task_definition__integration")
    }
    edges = _edges(flow_run)
    failed = [index for index, task_run in task_runs.items() if task_run.status == Status.FAILED]
    doomed = [
        index
        for index in _descendants(edges, failed)
        if task_runs[index].status == Status.PENDING and task_runs[index].enqueued_at is None
    ]
    if doomed:
        TaskRun.objects.filter(id__in=[task_runs[index].id for index in doomed]).update(
            status=Status.SKIPPED, error="An earlier step failed.", modified_date=timezone.now()
        )
        for index in doomed:
            task_runs[index].status = Status.SKIPPED

    predecessors: dict[int, list[int]] = {index: [] for index in task_runs}
    for source, target in edges:
        predecessors[target].append(source)
    ready = [
        task_run
        for index, task_run in sorted(task_runs.items())
        if task_run.status == Status.PENDING
        and task_run.enqueued_at is None
        and all(task_runs[source].status == Status.COMPLETED for source in predecessors[index])
    ]
    if ready:
        TaskRun.objects.filter(id__in=[task_run.id for task_run in ready]).update(enqueued_at=timezone.now())
    elif all(task_run.status in TaskRun.TERMINAL for task_run in task_runs.values()):
        _finish(flow_run, list(task_runs.values()), edges)
    return [ready_step(task_run) for task_run in ready]


def _finish(flow_run: FlowRun, task_runs: list[TaskRun], edges: list[tuple[int, int]]) -> None:
    if flow_run.status in FlowRun.TERMINAL:
        return
    failed = [task_run for task_run in task_runs if task_run.status == Status.FAILED]
    flow_run.status = RunStatus.FAILED if failed else RunStatus.COMPLETED
    flow_run.status_reason = failed[0].error if failed else ""
    flow_run.end_time = timezone.now()
    flow_run.save(update_fields=["status", "status_reason", "end_time", "modified_date"])
    if not failed:
        sources = {source for source, _ in edges}
        finals = [task_run for task_run in task_runs if task_run.task_operation_index not in sources]
        flow_result_finalize(flow_run=flow_run, final_task_runs=sorted(finals, key=lambda t: t.task_operation_index))


def flow_run_advance(*, flow_run_id: UUID) -> list[ReadyStep]:
    """Locks the run and readies what can run next (returned, not sent: the caller sends or runs them)."""
    with transaction.atomic():
        flow_run = FlowRun.objects.select_for_update().select_related("flow", "flow_request").get(id=flow_run_id)
        if flow_run.status in (RunStatus.CANCELLED, RunStatus.COMPLETED, RunStatus.FAILED):
            return []
        return _ready_steps(flow_run)


# --- Executing one step ----------------------------------------------------------------------------------------------


def _lease(definition: TaskDefinition, *, preparing: bool = False) -> Any:
    """How long the worker holds the step: its time limit and a grace, plus the model's budget while preparing
    with the llm preparer (each phase renews the lease)."""
    seconds = _time_limit(definition) + settings.NEENA_STEP_LEASE_GRACE_SECONDS
    if preparing and settings.NEENA_PREPARER == "llm":
        seconds += int(settings.NEENA_LLM_TIMEOUT_SECONDS * (settings.NEENA_LLM_MAX_RETRIES + 1))
    return timezone.now() + timedelta(seconds=seconds)


def _claim(task_run_id: UUID) -> TaskRun | None:
    """pending -> preparing, atomically; None when another job has it or it is no longer pending."""
    now = timezone.now()
    claimed = TaskRun.objects.filter(id=task_run_id, status=Status.PENDING).update(
        status=Status.PREPARING,
        start_time=now,
        lease_expires_at=now + timedelta(seconds=settings.NEENA_STEP_LEASE_GRACE_SECONDS),
        modified_date=now,
    )
    if not claimed:
        return None
    return TaskRun.objects.select_related(
        "flow_run__flow",
        "flow_run__flow_request",
        "flow_run__organization",
        "task_operation__task_definition__integration",
    ).get(id=task_run_id)


def _move(task_run: TaskRun, from_status: str, **changes: Any) -> bool:
    """A conditional transition: applies the changes only if the step is still in ``from_status``."""
    changes["modified_date"] = timezone.now()
    moved = TaskRun.objects.filter(id=task_run.id, status=from_status).update(**changes)
    for name, value in changes.items():
        setattr(task_run, name, value)
    return bool(moved)


def _step_inputs(task_run: TaskRun) -> StepInputs:
    flow_run = task_run.flow_run
    edges = _edges(flow_run)
    completed = dict(flow_run.task_runs.filter(status=Status.COMPLETED).values_list("task_operation_index", "result"))
    order, _ = topological_order(len(flow_run.flow.task_operations.all()), edges)
    index = task_run.task_operation_index
    position = order.index(index) if index in order else len(order)
    return StepInputs(
        operation=task_run.task_operation,  # type: ignore[arg-type]
        definition=task_run.task_operation.task_definition,  # type: ignore[union-attr]
        flow_request=flow_run.flow_request,
        upstream_results=completed,
        direct_predecessors=sorted(source for source, target in edges if target == index),
        nearest_first=list(reversed(order[:position])),
    )


def _needs_approval(task_run: TaskRun, definition: TaskDefinition) -> bool:
    policy = task_run.flow_run.organization.approval_policy
    return definition.side_effect and policy == Organization.ApprovalPolicy.SIDE_EFFECTS and not task_run.approved_at


def _capped(result: dict[str, Any]) -> dict[str, Any]:
    encoded = json.dumps(result, ensure_ascii=False, default=str)
    if len(encoded.encode()) <= settings.NEENA_MAX_RESULT_BYTES:
        return dict(json.loads(encoded))
    return {"truncated": True, "size_bytes": len(encoded.encode()), "preview": encoded[:2000]}


def _end_step(task_run: TaskRun, from_status: str, **changes: Any) -> list[ReadyStep]:
    """Records the step's end and readies its successors, under the run's lock."""
    with transaction.atomic():
        flow_run = (
            FlowRun.objects.select_for_update().select_related("flow", "flow_request").get(id=task_run.flow_run_id)
        )
        if not _move(task_run, from_status, end_time=timezone.now(), lease_expires_at=None, **changes):
            return []
        if flow_run.status in FlowRun.TERMINAL:
            return []
        if flow_run.status == RunStatus.PENDING:
            flow_run.status = RunStatus.IN_PROGRESS
            flow_run.save(update_fields=["status", "modified_date"])
        return _ready_steps(flow_run)


def _park(task_run: TaskRun) -> None:
    """Stops before a side effect: the step waits with its prepared parameters; the run waits for a decision."""
    with transaction.atomic():
        flow_run = FlowRun.objects.select_for_update().get(id=task_run.flow_run_id)
        if not _move(task_run, Status.PREPARING, status=Status.AWAITING_APPROVAL, lease_expires_at=None):
            return
        if flow_run.status in FlowRun.TERMINAL:
            return
        flow_run.status = RunStatus.AWAITING_APPROVAL
        flow_run.approval_status = FlowRun.ApprovalStatus.PENDING
        flow_run.approval_requested_at = timezone.now()
        flow_run.save(update_fields=["status", "approval_status", "approval_requested_at", "modified_date"])


def _retry_delay(definition: TaskDefinition, attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, or the service's own Retry-After when it gave one."""
    if retry_after is not None:
        return max(0.0, retry_after)
    base = float(definition.retry_policy.get("backoff_seconds", 2.0))
    return random.uniform(0, base * 2**attempt)  # noqa: S311 - jitter, not cryptography


def task_run_execute(*, task_run_id: UUID) -> StepOutcome:
    """Runs one step: claim, prepare, maybe park for approval, call the integration, record, advance.

    Idempotent: a step that is not pending (done, running elsewhere, waiting for approval) is left alone.
    """
    task_run = _claim(task_run_id)
    if task_run is None:
        return StepOutcome()
    flow_run = task_run.flow_run
    if task_run.task_operation is None:
        return StepOutcome(ready=_end_step(task_run, Status.PREPARING, status=Status.FAILED, error="Step removed."))
    definition = task_run.task_operation.task_definition
    if flow_run.status in FlowRun.TERMINAL:
        _move(task_run, Status.PREPARING, status=Status.CANCELLED, end_time=timezone.now(), lease_expires_at=None)
        return StepOutcome()
    FlowRun.objects.filter(id=flow_run.id, status=RunStatus.PENDING).update(
        status=RunStatus.IN_PROGRESS, modified_date=timezone.now()
    )

    if task_run.approved_at:
        values = {parameter["name"]: parameter["value"] for parameter in task_run.task_prep_answer["parameters"]}
    else:
        _move(task_run, Status.PREPARING, lease_expires_at=_lease(definition, preparing=True))
        try:
            preparation = step_prepare_configured(_step_inputs(task_run))
        except SoftTimeLimitExceeded:
            message = f"Preparing the step took longer than its time limit of {_time_limit(definition)} seconds."
            return StepOutcome(ready=_end_step(task_run, Status.PREPARING, status=Status.FAILED, error=message))
        except PreparationError as error:
            return StepOutcome(
                ready=_end_step(
                    task_run,
                    Status.PREPARING,
                    status=Status.FAILED,
                    error=str(error),
                    task_prep_prompt=error.preparation.prompt,
                    task_prep_answer=error.preparation.answer,
                )
            )
        _move(task_run, Status.PREPARING, task_prep_prompt=preparation.prompt, task_prep_answer=preparation.answer)
        if _needs_approval(task_run, definition):
            _park(task_run)
            return StepOutcome()
        values = preparation.values

    if not _move(task_run, Status.PREPARING, status=Status.IN_PROGRESS, lease_expires_at=_lease(definition)):
        return StepOutcome()
    try:
        credential = credential_for_step(
            organization_id=flow_run.organization_id,
            integration=definition.integration,
            triggered_by=flow_run.triggered_by,
        )
    except TaskError as error:
        return StepOutcome(ready=_end_step(task_run, Status.IN_PROGRESS, status=Status.FAILED, error=str(error)))
    context = TaskContext(
        organization_id=flow_run.organization_id,
        flow_run_id=flow_run.id,
        flow_request_id=flow_run.flow_request_id,
        task_run_id=task_run.id,
        idempotency_key=f"{task_run.id}:{task_run.attempt}",
        integration_entity=integration_entity(flow_run.flow_request),
        credential=credential,
        time_limit_seconds=_time_limit(definition),
    )
    try:
        result = task_call(definition, context, values)
    except TransientTaskError as error:
        return _retry_or_fail(task_run, definition, error)
    except SoftTimeLimitExceeded:
        message = f"The step took longer than its time limit of {_time_limit(definition)} seconds."
        return StepOutcome(ready=_end_step(task_run, Status.IN_PROGRESS, status=Status.FAILED, error=message))
    except TaskError as error:
        return StepOutcome(ready=_end_step(task_run, Status.IN_PROGRESS, status=Status.FAILED, error=str(error)))
    except Exception as error:
        logger.exception("Task %s crashed in step %s", definition.python_method_name, task_run.id)
        message = f"Unexpected error in '{definition.task_name}': {type(error).__name__}: {error}"
        return StepOutcome(ready=_end_step(task_run, Status.IN_PROGRESS, status=Status.FAILED, error=message))
    return StepOutcome(
        ready=_end_step(task_run, Status.IN_PROGRESS, status=Status.COMPLETED, result=_capped(result), error="")
    )


def _retry_or_fail(task_run: TaskRun, definition: TaskDefinition, error: TransientTaskError) -> StepOutcome:
    max_retries = int(definition.retry_policy.get("max_retries", 3))
    if task_run.attempt >= max_retries:
        message = f"{error} (gave up after {task_run.attempt + 1} attempts)"
        return StepOutcome(ready=_end_step(task_run, Status.IN_PROGRESS, status=Status.FAILED, error=message))
    delay = _retry_delay(definition, task_run.attempt, error.retry_after)
    if not _move(
        task_run,
        Status.IN_PROGRESS,
        status=Status.PENDING,
        attempt=task_run.attempt + 1,
        error=f"Retrying after: {error}",
        lease_expires_at=None,
        enqueued_at=timezone.now() + timedelta(seconds=delay),
    ):
        return StepOutcome()
    return StepOutcome(retry=ready_step(task_run), retry_in=delay)


def ready_steps_send(steps: list[ReadyStep]) -> None:
    """Sends readied steps to the broker after the current transaction commits."""
    _send_on_commit(steps)


def task_runs_unclaimed(*, older_than: Any) -> list[TaskRun]:
    """Queued steps no worker has claimed since ``older_than``: their message was lost (or the queue is slow)."""
    return list(
        TaskRun.objects.filter(status=Status.PENDING, enqueued_at__lt=older_than)
        .filter(Q(flow_run__status=RunStatus.IN_PROGRESS) | Q(flow_run__status=RunStatus.PENDING))
        .select_related("task_operation__task_definition__integration")
    )
