"""Creating runs: the checks a run, a retry or a rerun starts from (the flow and its request still there and in the
run's organization, every step's task still in the catalogue), and the run with a task run per step, its first steps
queued once the run is committed. Running those steps is ``apps.runs.services.step_execution``.
"""

import logging
from typing import TYPE_CHECKING, Any
from uuid import UUID

import structlog
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Membership, Organization, User
from apps.accounts.roles import role_require
from apps.core.exceptions import ConflictError, InputValidationError
from apps.flows.models import Flow, FlowRequest, FlowVersion, TaskOperation
from apps.runs.models import FlowRun, TaskRun
from apps.runs.queueing import ready_steps_send
from apps.runs.services.memory import RunMemory
from apps.runs.services.readiness import flow_run_finish
from apps.runs.services.transitions import ready_step

if TYPE_CHECKING:
    from apps.webhooks.models import WebhookTriggerOperation

logger = logging.getLogger(__name__)

Status = TaskRun.Status
RunStatus = FlowRun.Status


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
        ready_steps_send([ready_step(task_run) for task_run in task_runs if task_run.enqueued_at])
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
