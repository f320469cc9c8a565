"""Running flows: creating runs and executing their steps, so that every step runs exactly once.

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
from typing import TYPE_CHECKING, Any
from uuid import UUID

import structlog
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from apps.accounts.models import Membership, Organization, User
from apps.accounts.roles import role_require
from apps.core.exceptions import ConflictError, InputValidationError, Location
from apps.core.metrics import record_step_ended, record_step_started
from apps.core.storable_text import json_storable, storable
from apps.credentials.services.access import credential_approved_for_step, credential_for_step
from apps.flows.models import Flow, FlowRequest, FlowVersion, TaskOperation
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
from apps.runs.services.readiness import StepOutcome, flow_run_advance, flow_run_finish, ready_after
from apps.runs.services.results import integration_entity
from apps.runs.services.transitions import (
    idempotency_key_of,
    ready_step,
    step_claim,
    step_lease,
    step_move,
    time_limit_of,
)

if TYPE_CHECKING:
    from apps.webhooks.models import WebhookTriggerOperation

logger = logging.getLogger(__name__)

Status = TaskRun.Status
RunStatus = FlowRun.Status

# What the engine reads of a run it locks to park a step.
_RUN_STATE = ("id", "status", "flow_id", "flow_version_id", "flow_request_id", "organization_id", "triggered_by")


# --- Creating runs -------------------------------------------------------------------------------------------------


def _send_on_commit(steps: list[ReadyStep]) -> None:
    """Jobs are sent only once the transaction that readied them has committed: a worker never looks for a row that
    is not there yet."""
    if steps:
        transaction.on_commit(lambda: send_steps(steps))


def run_sources_check(*, flow: Flow, flow_request: FlowRequest | None = None) -> None:
    """A deleted flow or flow request cannot run again, by a new run, a rerun or a retry of one of its runs: a 409
    (``flow_deleted``, ``flow_request_deleted``) says which; its runs stay readable. Without ``flow_request`` (a
    retry of a flow's failed runs, checked again run by run) only the flow is checked."""
    if flow.deleted_at is not None:
        raise ConflictError(
            "The flow was deleted: its runs stay readable, but it cannot run again.", code="flow_deleted"
        )
    if flow_request is not None and flow_request.deleted_at is not None:
        raise ConflictError(
            "The flow request was deleted: its runs stay readable, but it cannot run again.",
            code="flow_request_deleted",
        )


def run_references_check(
    *, organization_id: UUID, flow: Flow, flow_request: FlowRequest, operations: list[TaskOperation]
) -> None:
    """What a run, a retry or a rerun starts from must still hold in the run's organization: the flow and the request
    belong to it, and every step's task definition is still in the catalogue. A ConflictError (409) says what does
    not; credentials are looked up in the run's organization when each step runs."""
    if flow.organization_id != organization_id or flow_request.organization_id != organization_id:
        raise ConflictError(
            "The flow or the flow request no longer belongs to the run's organization.", code="organization_mismatch"
        )
    removed = [operation for operation in operations if operation.task_definition.deleted_at is not None]
    if removed:
        steps = ", ".join(
            f"step {operation.index} ('{operation.task_definition.task_name}')" for operation in removed[:5]
        )
        raise ConflictError(
            f"The catalogue no longer has the task of {steps}; edit the flow to use another task.",
            code="task_definition_removed",
        )


@transaction.atomic
def flow_execute(
    *,
    user: User | None,
    flow: Flow,
    flow_request: FlowRequest,
    triggered_by: str = "",
    rerun_of: FlowRun | None = None,
    flow_version: FlowVersion | None = None,
    copies: dict[int, TaskRun] | None = None,
    parameter_overrides: dict[int, dict[str, Any]] | None = None,
    rerun_from_index: int | None = None,
    trigger_webhook_operation: "WebhookTriggerOperation | None" = None,
) -> FlowRun:
    """Creates the run (pending), pinned to ``flow_version`` (by default the flow's latest), and a pending task run
    per step of that version, the first steps (no predecessor) already marked queued, then queues them after commit.

    ``copies`` (a rerun from a step, ``apps.runs.services.replays``) are completed task runs of another run of the
    same version, by step index: those steps are created completed with their results (``copied_from``) and never
    run or prepared; a step whose predecessors are all copies is then among the first. ``parameter_overrides`` are
    the values a step's preparation takes first, by step index.

    The run's trigger is ``trigger_webhook_operation`` when a delivery to it started the run (``user`` is then the
    operation's creator, whom the run acts as), else ``user``.

    A deleted flow or request cannot run (409), nor a version whose tasks the catalogue no longer has (the tasks of
    copied steps are not run, so not checked). Under the ``always`` approval policy the run waits for approval before
    any step is queued. A person starting it needs the member role in the flow's organization (a webhook delivery is
    judged by its signature instead).
    """
    if user is not None and trigger_webhook_operation is None:
        role_require(user=user, organization_id=flow.organization_id, role=Membership.Role.MEMBER)
    copies = copies or {}
    parameter_overrides = parameter_overrides or {}
    if flow.organization_id != flow_request.organization_id:
        raise InputValidationError.single(
            ["query", "flow_request_id"], "The flow request belongs to another organization than the flow.", "mismatch"
        )
    run_sources_check(flow=flow, flow_request=flow_request)
    version = flow_version or flow.current_version
    if version.flow_id != flow.id:
        raise ValueError(f"Version {version.id} is not a version of flow {flow.id}.")
    operations = list(
        version.task_operations.select_related("task_definition__integration").only(
            "id",
            "index",
            "task_definition__task_name",
            "task_definition__deleted_at",
            "task_definition__retry_policy",
            "task_definition__integration__short_name",
        )
    )
    run_references_check(
        organization_id=flow.organization_id,
        flow=flow,
        flow_request=flow_request,
        operations=[operation for operation in operations if operation.index not in copies],
    )
    organization = Organization.objects.get(id=flow.organization_id)
    now = timezone.now()
    parks = organization.approval_policy == Organization.ApprovalPolicy.ALWAYS
    flow_run = FlowRun.objects.create(
        organization=organization,
        flow=flow,
        flow_version=version,
        flow_request=flow_request,
        status=RunStatus.AWAITING_APPROVAL if parks else RunStatus.PENDING,
        approval_status=FlowRun.ApprovalStatus.PENDING if parks else None,
        approval_requested_at=now if parks else None,
        triggered_time=now,
        triggered_by=triggered_by or (user.email if user else ""),
        trigger_user=None if trigger_webhook_operation is not None else user,
        trigger_webhook_operation=trigger_webhook_operation,
        rerun_of=rerun_of,
        rerun_from_index=rerun_from_index,
        created_by_email=user.email if user else triggered_by,
        modified_by_email=user.email if user else triggered_by,
    )
    waits_for: dict[int, set[int]] = {}
    for source, target in RunMemory(flow_run).edges:
        if source not in copies:
            waits_for.setdefault(target, set()).add(source)
    task_runs = [
        _copied_task_run(flow_run, operation, copies[operation.index])
        if operation.index in copies
        else TaskRun(
            flow_run=flow_run,
            task_operation=operation,
            task_operation_index=operation.index,
            parameter_overrides=parameter_overrides.get(operation.index, {}),
            enqueued_at=None if parks or operation.index in waits_for else now,
        )
        for operation in operations
    ]
    TaskRun.objects.bulk_create(task_runs)
    with structlog.contextvars.bound_contextvars(run_id=str(flow_run.id)):
        logger.info("Flow run created for flow %s version %d (%d steps)", flow.id, version.number, len(task_runs))
    if not parks:
        if not task_runs:
            flow_run_finish(flow_run, [])
        _send_on_commit([ready_step(task_run) for task_run in task_runs if task_run.enqueued_at])
    return flow_run


def _copied_task_run(flow_run: FlowRun, operation: TaskOperation, source: TaskRun) -> TaskRun:
    """A step of a rerun from a later step: completed, with the source step's preparation and result, marked as a
    copy of the task run that produced them (the source's own source when the source was itself a copy). What an
    approval of that step fixed stays with it (``copied_from`` leads to it)."""
    return TaskRun(
        flow_run=flow_run,
        task_operation=operation,
        task_operation_index=operation.index,
        status=Status.COMPLETED,
        start_time=source.start_time,
        end_time=source.end_time,
        task_prep_prompt=source.task_prep_prompt,
        task_prep_answer=source.task_prep_answer,
        result=source.result,
        copied_from_id=source.copied_from_id or source.id,
    )


# --- Executing one step ----------------------------------------------------------------------------------------------


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


def _storable_result(result: dict[str, Any]) -> tuple[dict[str, Any], list[Location]]:
    """The result as it is stored: plain JSON with every NUL and lone surrogate replaced by U+FFFD (PostgreSQL's
    jsonb refuses NUL, UTF-8 cannot encode a surrogate), truncated past NEENA_MAX_RESULT_BYTES; and where text was
    replaced."""
    plain, replaced, encoded = json_storable(result)
    size = len(encoded.encode())
    if size <= settings.NEENA_MAX_RESULT_BYTES:
        return dict(plain), replaced
    return {"truncated": True, "size_bytes": size, "preview": encoded[:2000]}, replaced


def _storable_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """A step's changes as they can be stored (see ``apps.core.storable_text``).

    A result holding text that cannot be stored fails the step, with a copy of the result in which that text is
    U+FFFD: the service's answer is not what it said, so no later step should act on it as if it were, and the
    copy shows what came back (a side effect that happened is visible, and is not repeated). The step's own texts
    (the error, the preparation) are only cleaned.
    """
    storable_changes = dict(changes)
    for name in ("task_prep_prompt", "task_prep_answer"):
        if name in changes:
            plain, replaced, _ = json_storable(changes[name])
            if replaced:
                storable_changes[name] = plain
    if "error" in changes:
        storable_changes["error"] = storable(changes["error"])
    if changes.get("result") is not None:
        storable_changes["result"], replaced = _storable_result(changes["result"])
        if replaced and changes.get("status") == Status.COMPLETED:
            where = ", ".join(".".join(map(str, ["result", *path])) for path in replaced[:5])
            storable_changes["status"] = Status.FAILED
            storable_changes["error"] = (
                f"The result could not be stored as returned: {where} held text that is not valid Unicode (a NUL "
                "or a lone surrogate). It is kept with U+FFFD in its place."
            )
    return storable_changes


def _end_step(
    task_run: TaskRun, memory: RunMemory, from_status: str, *, may_claim: int = 0, **changes: Any
) -> StepOutcome:
    """Records the step's end, then readies what it unblocks (claiming up to ``may_claim`` core steps for this job).

    The end is committed first and what it unblocks is checked after, so of two steps ending at once the later check
    sees both ends: a join or the run's end is never missed, and a step readied twice is still claimed once. A worker
    that dies between the two leaves the check to the sweeper (``flow_runs_stalled``). A failure is rare and changes
    more (the steps below it are skipped): it is checked under the run's lock, over the whole run.

    An end that cannot be stored (whatever the reason but the database being unreachable) fails the step with the
    reason, written without the outcome: its call happened and must not be made again, which a step left running
    would be once its lease expired. When the database is unreachable the step stays as it is and the sweeper ends
    it (a side effect fails, ``runs_sweep``).
    """
    ended: dict[str, Any] = {"end_time": timezone.now(), "lease_expires_at": None}
    try:
        moved = step_move(task_run, from_status, **ended, **_storable_changes(changes))
    except (OperationalError, InterfaceError):
        raise
    except Exception as error:
        logger.exception("The end of step %s could not be stored", task_run.id)
        what = "result" if changes.get("status") == Status.COMPLETED else "step's outcome"
        message = storable(f"The {what} could not be stored: {type(error).__name__}: {error}")
        changes = {"status": Status.FAILED, "error": message, "result": None}
        moved = step_move(task_run, from_status, **ended, **changes)
    if not moved:
        return StepOutcome()
    _record_end(task_run, task_run.status)
    if task_run.status != Status.COMPLETED:
        return StepOutcome(ready=flow_run_advance(flow_run_id=task_run.flow_run_id))
    memory.remember(task_run.task_operation_index, task_run.result)
    return ready_after(task_run.flow_run, memory, task_run.task_operation_index, may_claim)


def _step_labels(task_run: TaskRun) -> tuple[str, str]:
    """The step's integration and task names, from the catalogue rows the claim attached (no query)."""
    if task_run.task_operation is None:
        return "unknown", "unknown"
    definition = task_run.task_operation.task_definition
    return definition.integration.short_name, definition.task_name


def _record_end(task_run: TaskRun, status: str | None) -> None:
    """Counts and logs a completed or failed step, with the time since its claim."""
    if status not in (Status.COMPLETED, Status.FAILED):
        return
    integration, task = _step_labels(task_run)
    started, ended = task_run.start_time, task_run.end_time
    seconds = (ended - started).total_seconds() if started and ended else None
    record_step_ended(integration=integration, task=task, status=status, seconds=seconds)
    if status == Status.COMPLETED:
        logger.info("Step %s %s completed", integration, task)
    else:
        logger.info("Step %s %s failed: %s", integration, task, task_run.error)


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
        integration, task = _step_labels(task_run)
        record_step_started(integration=integration, task=task)
        return _run_claimed_step(task_run, memory, may_claim)


def _run_claimed_step(task_run: TaskRun, memory: RunMemory, may_claim: int) -> StepOutcome:
    flow_run = task_run.flow_run

    def end(from_status: str, **changes: Any) -> StepOutcome:
        return _end_step(task_run, memory, from_status, may_claim=may_claim, **changes)

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
            _park(task_run, **_storable_changes(prepared))
            return StepOutcome()
        values = preparation.values

    if queue_for(definition.integration.short_name) == settings.NEENA_ORCHESTRATION_QUEUE:
        # A core step's call is local and bounded by the lease it was claimed with: its preparation is recorded with
        # its outcome, in one write.
        since = Status.PREPARING
    else:
        # Before calling a service, the step says so (in progress) and takes a lease for the call's time limit.
        # From here on the call may have happened: a step found in progress after its lease is never called again
        # (``runs_sweep``), and its end is stored whatever it holds (``_end_step``).
        if not step_move(
            task_run,
            Status.PREPARING,
            status=Status.IN_PROGRESS,
            lease_expires_at=step_lease(definition),
            **_storable_changes(prepared),
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


def ready_steps_send(steps: list[ReadyStep]) -> None:
    """Sends readied steps to the broker after the current transaction commits."""
    _send_on_commit(steps)
