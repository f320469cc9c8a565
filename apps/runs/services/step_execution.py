"""Executing steps, so that every step runs exactly once: claim, prepare, maybe park for approval, call the
integration, record its end, ready what it unblocks. Creating the runs whose steps these are is
``apps.runs.services.run_creation``.

The graph state lives in the database. A step is claimed with a conditional UPDATE (pending -> preparing,
``apps.runs.services.transitions``), so a redelivered or duplicated job, or a step readied twice, runs once. When a
step ends, its end is committed first and its successors are examined after (``apps.runs.services.readiness``).
"""

import logging
import random
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import structlog
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Organization
from apps.core.metrics import record_step_started
from apps.core.storable_text import storable
from apps.credentials.services.access import credential_approved_for_step, credential_for_step
from apps.integrations.execution import CredentialAccess, TaskContext, TaskError, TransientTaskError, task_call
from apps.integrations.models import Integration, TaskDefinition
from apps.runs.models import FlowRun, TaskRun
from apps.runs.queueing import ReadyStep, queue_for, send_steps
from apps.runs.services.approved_steps import (
    approved_step_problem,
    credential_config_digest,
    credential_secret_matches,
    prepared_values,
)
from apps.runs.services.memory import STEP_OUTPUTS, RunMemory
from apps.runs.services.preparation import PreparationError, StepInputs, step_prepare_configured
from apps.runs.services.readiness import StepOutcome
from apps.runs.services.results import integration_entity
from apps.runs.services.step_ends import step_end, step_labels, storable_changes
from apps.runs.services.transitions import (
    idempotency_key_of,
    ready_step,
    step_claim,
    step_lease,
    step_move,
    time_limit_of,
)

logger = logging.getLogger(__name__)

Status = TaskRun.Status
RunStatus = FlowRun.Status

# What the engine reads of a run it locks to park a step.
_RUN_STATE = ("id", "status", "flow_id", "flow_version_id", "flow_request_id", "organization_id", "triggered_by")


def _pending(task_run_ids: list[UUID]) -> dict[UUID, TaskRun]:
    """The steps, read at once, that are still pending, each with its run, organization and operation."""
    rows = (
        TaskRun.objects.select_related("flow_run__organization", "task_operation")
        .defer(*STEP_OUTPUTS)
        .filter(id__in=task_run_ids, status=Status.PENDING)
    )
    return {task_run.id: task_run for task_run in rows}


def _claim(task_run: TaskRun, memories: dict[UUID, RunMemory]) -> RunMemory | None:
    """Claims a step read by ``_pending`` (it may have been claimed since); its run's memory, or None when another
    job has it or it is no longer pending. ``memories`` holds those of the job."""
    memory = memories.setdefault(task_run.flow_run_id, RunMemory(task_run.flow_run))
    memory.organization = task_run.flow_run.organization
    return memory if step_claim(task_run, memory) else None


def _step_inputs(task_run: TaskRun, memory: RunMemory) -> StepInputs:
    results, direct_predecessors, nearest_first = memory.upstream(task_run.task_operation_index)
    return StepInputs(
        operation=task_run.task_operation,  # type: ignore[arg-type]
        definition=task_run.task_operation.task_definition,  # type: ignore[union-attr]
        flow_request=memory.flow_request,
        upstream_results=results,
        direct_predecessors=direct_predecessors,
        nearest_first=nearest_first,
        overrides=task_run.parameter_overrides,
    )


def _needs_approval(task_run: TaskRun, definition: TaskDefinition) -> bool:
    policy = task_run.flow_run.organization.approval_policy
    return definition.side_effect and policy == Organization.ApprovalPolicy.SIDE_EFFECTS and not task_run.approved_at


def _park(task_run: TaskRun, **changes: Any) -> None:
    """Stops before a side effect: the step waits with its prepared parameters; the run waits for a decision."""
    with transaction.atomic():
        flow_run = FlowRun.objects.select_for_update().only(*_RUN_STATE).get(id=task_run.flow_run_id)
        if flow_run.status in FlowRun.TERMINAL:  # cancelled meanwhile: nothing to approve
            step_move(
                task_run, Status.PREPARING, status=Status.CANCELLED, end_time=timezone.now(), lease_expires_at=None
            )
            return
        if not step_move(task_run, Status.PREPARING, status=Status.AWAITING_APPROVAL, lease_expires_at=None, **changes):
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


def task_run_execute(
    *, task_run_id: UUID, memories: dict[UUID, RunMemory] | None = None, may_claim: int = 0
) -> StepOutcome:
    """Runs one step: claim, prepare, maybe park for approval, call the integration, record, advance.

    Idempotent: a step that is not pending (done, running elsewhere, waiting for approval) is left alone. A job that
    runs several steps passes the same ``memories`` to each call, so it reads what does not change once per run, and
    lets the step claim up to ``may_claim`` of the core steps it readies, to run them next (``_run_claimed``).
    """
    task_run = _pending([task_run_id]).get(task_run_id)
    memory = _claim(task_run, memories if memories is not None else {}) if task_run else None
    if task_run is None or memory is None:
        return StepOutcome()
    return _run_claimed(task_run, memory, may_claim)


def _run_claimed(task_run: TaskRun, memory: RunMemory, may_claim: int) -> StepOutcome:
    """Runs a claimed step (``preparing``), up to recording its end; every log line written meanwhile carries the
    step's ``run_id`` and ``step_id``, and the step is counted as started."""
    with structlog.contextvars.bound_contextvars(run_id=str(task_run.flow_run_id), step_id=str(task_run.id)):
        integration, task = step_labels(task_run)
        record_step_started(integration=integration, task=task)
        return _run_claimed_step(task_run, memory, may_claim)


def _run_claimed_step(task_run: TaskRun, memory: RunMemory, may_claim: int) -> StepOutcome:
    flow_run = task_run.flow_run

    def end(from_status: str, **changes: Any) -> StepOutcome:
        return step_end(task_run, memory, from_status, may_claim=may_claim, **changes)

    if task_run.task_operation is None:
        return end(Status.PREPARING, status=Status.FAILED, error="Step removed.")
    definition = task_run.task_operation.task_definition
    if flow_run.status in FlowRun.TERMINAL:
        step_move(task_run, Status.PREPARING, status=Status.CANCELLED, end_time=timezone.now(), lease_expires_at=None)
        return StepOutcome()
    if definition.deleted_at is not None:
        message = f"The task '{definition.task_name}' was removed from the catalogue; the step is not run."
        return end(Status.PREPARING, status=Status.FAILED, error=message)
    if flow_run.status == RunStatus.PENDING:
        FlowRun.objects.filter(id=flow_run.id, status=RunStatus.PENDING).update(
            status=RunStatus.IN_PROGRESS, modified_date=timezone.now()
        )
        flow_run.status = RunStatus.IN_PROGRESS

    prepared: dict[str, Any] = {}
    if task_run.approved_at:
        values = prepared_values(task_run.task_prep_answer)
        # A step approved before approvals recorded what they fixed (apps/runs/migrations/0004) has no record.
        problem = task_run.approved_step and approved_step_problem(
            task_run=task_run, definition=definition, values=values
        )
        if problem:
            return end(Status.PREPARING, status=Status.FAILED, error=problem)
    else:
        try:
            preparation = step_prepare_configured(_step_inputs(task_run, memory))
        except SoftTimeLimitExceeded:
            message = f"Preparing the step took longer than its time limit of {time_limit_of(definition)} seconds."
            return end(Status.PREPARING, status=Status.FAILED, error=message)
        except PreparationError as error:
            return end(
                Status.PREPARING,
                status=Status.FAILED,
                error=str(error),
                task_prep_prompt=error.preparation.prompt,
                task_prep_answer=error.preparation.answer,
            )
        prepared = {"task_prep_prompt": preparation.prompt, "task_prep_answer": preparation.answer}
        if _needs_approval(task_run, definition):
            _park(task_run, **storable_changes(prepared))
            return StepOutcome()
        values = preparation.values

    if queue_for(definition.integration.short_name) == settings.NEENA_ORCHESTRATION_QUEUE:
        # A core step's call is local and bounded by the lease it was claimed with: its preparation is recorded with
        # its outcome, in one write.
        since = Status.PREPARING
    else:
        # Before calling a service, the step says so (in progress) and takes a lease for the call's time limit.
        # From here on the call may have happened: a step found in progress after its lease is never called again
        # (``runs_sweep``), and its end is stored whatever it holds (``step_end``).
        if not step_move(
            task_run,
            Status.PREPARING,
            status=Status.IN_PROGRESS,
            lease_expires_at=step_lease(definition),
            **storable_changes(prepared),
        ):
            return StepOutcome()
        since, prepared = Status.IN_PROGRESS, {}

    def outcome(**changes: Any) -> StepOutcome:
        return end(since, **prepared, **changes)

    try:
        credential = _credential(task_run, definition.integration)
    except TaskError as error:
        return outcome(status=Status.FAILED, error=str(error))
    context = TaskContext(
        organization_id=flow_run.organization_id,
        flow_run_id=flow_run.id,
        flow_request_id=flow_run.flow_request_id,
        task_run_id=task_run.id,
        idempotency_key=idempotency_key_of(task_run),
        integration_entity=integration_entity(memory.flow_request),
        credential=credential,
        time_limit_seconds=time_limit_of(definition),
    )
    try:
        result = task_call(definition, context, values)
    except TransientTaskError as error:
        return _retry_or_fail(task_run, definition, error, since, outcome)
    except SoftTimeLimitExceeded:
        message = f"The step took longer than its time limit of {time_limit_of(definition)} seconds."
        return outcome(status=Status.FAILED, error=message)
    except TaskError as error:
        return outcome(status=Status.FAILED, error=str(error))
    except Exception as error:
        logger.exception("Task %s crashed in step %s", definition.python_method_name, task_run.id)
        message = f"Unexpected error in '{definition.task_name}': {type(error).__name__}: {error}"
        return outcome(status=Status.FAILED, error=message)
    return outcome(status=Status.COMPLETED, result=result, error="")


def _credential(task_run: TaskRun, integration: Integration) -> CredentialAccess | None:
    """The credential the step runs with: the one its approval fixed (or none, if it fixed none), else the one the
    run's organization has for the integration now."""
    flow_run = task_run.flow_run
    if not task_run.approved_step or integration.auth_type == Integration.AuthType.NONE:
        return credential_for_step(
            organization_id=flow_run.organization_id, integration=integration, triggered_by=flow_run.triggered_by
        )
    approved = task_run.approved_step["credential"]
    if approved is None:
        raise TaskError(
            f"No usable {integration.name} credential was there when the step was approved, so it does not run with "
            "one found since. Retry the run to approve it again."
        )
    access = credential_approved_for_step(
        organization_id=flow_run.organization_id,
        integration=integration,
        credential_id=UUID(approved["id"]),
        owner_email=approved["owner_email"],
    )
    # Approvals recorded before the settings were part of the record have no digest of them.
    if "config_digest" in approved and approved["config_digest"] != credential_config_digest(access.config):
        raise TaskError(
            f"The {integration.name} credential approved for this step ({approved['owner_email']}'s) was changed "
            "since: its settings (where it connects) are not those approved, so the step is not run. Retry the run "
            "to approve it again."
        )
    # Approvals recorded before the secret was part of the record have no HMAC of it: they run as before.
    if "secret_hmac" in approved and not credential_secret_matches(
        approved=approved["secret_hmac"], auth_type=integration.auth_type, secrets=access.secrets
    ):
        raise TaskError(
            f"The {integration.name} credential approved for this step ({approved['owner_email']}'s) was changed "
            "since: its secret (the API key or password) is not the one approved, so the step is not run. Retry the "
            "run to approve it again."
        )
    return access


def _retry_or_fail(
    task_run: TaskRun,
    definition: TaskDefinition,
    error: TransientTaskError,
    since: str,
    outcome: Callable[..., StepOutcome],
) -> StepOutcome:
    max_retries = int(definition.retry_policy.get("max_retries", 3))
    if task_run.attempt >= max_retries:
        message = f"{error} (gave up after {task_run.attempt + 1} attempts)"
        return outcome(status=Status.FAILED, error=message)
    delay = _retry_delay(definition, task_run.attempt, error.retry_after)
    if not step_move(
        task_run,
        since,
        status=Status.PENDING,
        attempt=task_run.attempt + 1,
        error=storable(f"Retrying after: {error}"),
        lease_expires_at=None,
        enqueued_at=timezone.now() + timedelta(seconds=delay),
    ):
        return StepOutcome()
    return StepOutcome(retry=ready_step(task_run), retry_in=delay)


def task_runs_execute(*, task_run_ids: list[UUID], time_limit_seconds: float) -> None:
    """A job's work: runs its steps one after the other, and the ``core`` steps they ready, in place; queues the rest
    (see ``apps.runs.queueing``).

    Running a readied step here instead of queueing it saves a broker round trip and a claim per step: the write that
    readies it claims it for this job. In place runs at most NEENA_INLINE_STEP_LIMIT readied steps, and none is claimed
    after half the job's time limit: the job's steps not started by then are queued again. Steps calling external
    services always go through their queue, so they get their own time limit and worker pool.
    """
    started = time.monotonic()
    loaded = _pending(task_run_ids)  # one read for all the job's steps; each is still claimed on its own
    assigned: deque[UUID] = deque(task_run_ids)
    claimed: deque[TaskRun] = deque()
    budget = settings.NEENA_INLINE_STEP_LIMIT
    memories: dict[UUID, RunMemory] = {}
    while claimed or assigned:
        in_time = time.monotonic() - started <= time_limit_seconds / 2
        may_claim = budget if in_time else 0
        if claimed:
            next_step = claimed.popleft()
            outcome = _run_claimed(next_step, memories[next_step.flow_run_id], may_claim)
        elif in_time or len(assigned) == len(task_run_ids):
            sent = loaded.get(assigned.popleft())
            memory = _claim(sent, memories) if sent else None
            outcome = _run_claimed(sent, memory, may_claim) if sent and memory else StepOutcome()
        else:
            limit = int(time_limit_seconds)
            send_steps([ReadyStep(task_run_id, settings.NEENA_ORCHESTRATION_QUEUE, limit) for task_run_id in assigned])
            return
        budget -= len(outcome.claimed)
        claimed.extend(outcome.claimed)
        if outcome.retry:
            send_steps([outcome.retry], countdown=outcome.retry_in)
        send_steps(outcome.ready)
