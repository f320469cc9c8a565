"""Approval decisions on runs parked before a side effect: approve (optionally changing parameters) or reject.

A decision is taken once: both services claim the pending approval with a conditional UPDATE, so of a concurrent
approve and reject exactly one wins and the other answers 409. The admin's buttons and the API call these same
functions. Approving records, per parked step, what it fixes (``apps.runs.services.approved_steps``): the step then
runs exactly that or fails.
"""

from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Membership, Organization, User
from apps.accounts.roles import role_require
from apps.audit.services import audit_event_record
from apps.core.exceptions import ConflictError, ErrorItem, ForbiddenError, InputValidationError
from apps.credentials.services.access import credential_choice
from apps.runs.models import ApprovalDecision, FlowRun, TaskRun
from apps.runs.queueing import ready_steps_send
from apps.runs.services.approved_steps import approved_step_record
from apps.runs.services.preparation import OverrideError, parameters_override
from apps.runs.services.readiness import flow_run_advance
from apps.runs.services.transitions import ready_step
from apps.webhooks.models import WebhookTriggerOperation

TIMEOUT_DECIDER = "approval timeout"
# How a webhook-started run's ``triggered_by`` begins (``trigger_run_triggered_by``).
WEBHOOK_TRIGGER_PREFIX = "webhook:"


def _claim_decision(flow_run: FlowRun, decision: str, decided_by: str, comment: str) -> None:
    claimed = FlowRun.objects.filter(id=flow_run.id, approval_status=FlowRun.ApprovalStatus.PENDING).update(
        approval_status=decision,
        approved_by=decided_by,
        approved_at=timezone.now(),
        approval_comment=comment,
        modified_date=timezone.now(),
    )
    if not claimed:
        raise ConflictError("The flow run is not waiting for approval.", code="not_awaiting_approval")
    flow_run.refresh_from_db()


def run_triggered_by_user(*, flow_run: FlowRun, user: User) -> bool:
    """Whether ``user`` started the run: they are its trigger user, or it is a webhook-started run and they created
    its operation, or are the user it acted as when it started (its ``created_by_email``, kept when the operation is
    deleted). A run whose trigger user is gone (deleted, or never resolved when references were migrated) falls back
    to the email it recorded."""
    if flow_run.trigger_user_id is not None:
        return bool(flow_run.trigger_user_id == user.id)
    email = user.email.lower()
    if flow_run.trigger_webhook_operation_id is not None or flow_run.triggered_by.startswith(WEBHOOK_TRIGGER_PREFIX):
        creators = {flow_run.created_by_email.lower()}
        operation_id = flow_run.trigger_webhook_operation_id
        operation = WebhookTriggerOperation.objects.filter(id=operation_id).first() if operation_id else None
        if operation is not None:
            creators.add(operation.created_by_email.lower())
        return email in creators
    return flow_run.triggered_by.lower() == email


def run_retried_by_user(*, flow_run: FlowRun, user: User) -> bool:
    """Whether ``user`` last retried the run: its ``retried_by_user``, or, once that user is deleted, the email the
    retry recorded. A retry keeps the run's trigger, but the steps it prepares again are the retrier's doing (they
    may have edited the request first), so the retrier counts as a trigger for ``forbid_self_approval``."""
    if flow_run.retried_by_user_id is not None:
        return bool(flow_run.retried_by_user_id == user.id)
    return bool(flow_run.retried_by_email) and flow_run.retried_by_email.lower() == user.email.lower()


def _check_decider(flow_run: FlowRun, user: User | None) -> None:
    """A person deciding needs the approver role in the run's organization (a superuser, deciding on any tenant's
    runs in the admin, does not), and, where the organization forbids self-approval, is neither the user who
    triggered the run nor the one who last retried it (403 ``self_approval``). ``user`` None is the timeout sweeper."""
    if user is None:
        return
    if not user.is_superuser:
        role_require(user=user, organization_id=flow_run.organization_id, role=Membership.Role.APPROVER)
    organization = Organization.objects.get(id=flow_run.organization_id)
    if not organization.forbid_self_approval:
        return
    if run_triggered_by_user(flow_run=flow_run, user=user):
        message = "The user who triggered a run may not decide on it."
        if flow_run.trigger_user_id is None and flow_run.triggered_by.startswith(WEBHOOK_TRIGGER_PREFIX):
            message += " A run a webhook operation started is triggered by the operation's creator."
        raise ForbiddenError(message, code="self_approval")
    if run_retried_by_user(flow_run=flow_run, user=user):
        raise ForbiddenError("The user who retried a run may not decide on it.", code="self_approval")


@transaction.atomic
def run_approve(
    *,
    flow_run: FlowRun,
    user: User | None,
    parameters: dict[str, Any] | None = None,
    comment: str = "",
    decided_by: str = "",
) -> FlowRun:
    """Approves the parked steps (with the approver's parameter overrides, audited) and resumes the run.

    Each parked step's task, credential and parameters as approved are recorded on it and in the audit. The steps
    are those of the run's own flow version, whatever was done to the flow since it parked. A parked step left
    without its operation (removed by an edit before flows had versions) is approved as it is, and fails when run.
    """
    _check_decider(flow_run, user)
    # Lock the run first: a step parking on a parallel branch (which takes the same lock) then either parks before
    # this reads the parked steps, and is approved with them, or after the decision, and asks for a new one.
    flow_run = FlowRun.objects.select_for_update().get(id=flow_run.id)
    decided_by = decided_by or (user.email if user else "")
    parked = list(
        flow_run.task_runs.filter(status=TaskRun.Status.AWAITING_APPROVAL).select_related(
            "task_operation__task_definition__integration"
        )
    )
    overrides = parameters or {}
    changes_by_step: dict[UUID, list[dict[str, Any]]] = {}
    known: set[str] = set()
    problems: dict[str, ErrorItem] = {}
    for task_run in parked:
        if task_run.task_operation is None:
            continue
        definition = task_run.task_operation.task_definition
        known.update(definition.parameter_names)
        changes_by_step[task_run.id] = []
        # One override at a time, so that every wrong one is reported, not only the first.
        for name, value in overrides.items():
            if name not in definition.parameter_names:
                continue
            try:
                task_run.task_prep_answer, changes = parameters_override(
                    task_run.task_prep_answer, definition, {name: value}
                )
            except OverrideError as error:
                problems.setdefault(name, ErrorItem(["body", "parameters", name], str(error), "invalid_override"))
                continue
            changes_by_step[task_run.id].extend(changes)
    for name in sorted(set(overrides) - known):
        problems[name] = ErrorItem(
            ["body", "parameters", name], f"No step waiting for approval has a parameter '{name}'.", "unknown"
        )
    if problems:
        raise InputValidationError(list(problems.values()))

    _claim_decision(flow_run, FlowRun.ApprovalStatus.APPROVED, decided_by, comment)
    now = timezone.now()
    approved_steps: dict[UUID, dict[str, Any]] = {}
    for task_run in parked:
        approved_step = approved_steps[task_run.id] = _approved_step(flow_run, task_run)
        TaskRun.objects.filter(id=task_run.id, status=TaskRun.Status.AWAITING_APPROVAL).update(
            status=TaskRun.Status.PENDING,
            approved_at=now,
            approved_step=approved_step,
            enqueued_at=now,
            task_prep_answer=task_run.task_prep_answer,
            modified_date=now,
        )
        ApprovalDecision.objects.create(
            flow_run=flow_run,
            task_run=task_run,
            decision=ApprovalDecision.Decision.APPROVED,
            decided_by=decided_by,
            decided_by_user=user,
            comment=comment,
            overrides=changes_by_step.get(task_run.id, []),
            approved_step=approved_step,
        )
    if not parked:
        ApprovalDecision.objects.create(
            flow_run=flow_run,
            decision=ApprovalDecision.Decision.APPROVED,
            decided_by=decided_by,
            decided_by_user=user,
            comment=comment,
        )
    FlowRun.objects.filter(id=flow_run.id).update(status=FlowRun.Status.IN_PROGRESS, modified_date=now)
    _decision_audit(
        flow_run,
        user,
        decided_by,
        after={
            "approval_status": FlowRun.ApprovalStatus.APPROVED,
            "comment": comment,
            "steps": [
                {
                    "task_run": task_run.id,
                    "overrides": changes_by_step.get(task_run.id, []),
                    "fingerprint": approved_steps.get(task_run.id, {}).get("fingerprint"),
                }
                for task_run in parked
            ],
        },
    )
    ready_steps_send([ready_step(task_run) for task_run in parked] + flow_run_advance(flow_run_id=flow_run.id))
    flow_run.refresh_from_db()
    return flow_run


def _decision_audit(flow_run: FlowRun, user: User | None, decided_by: str, after: dict[str, Any]) -> None:
    """The decision in the organization's audit log (by the user, or by the system as ``decided_by`` says)."""
    audit_event_record(
        organization_id=flow_run.organization_id,
        actor=user,
        actor_email=decided_by,
        action=f"flow_run.{after['approval_status']}",
        object_type="flow_run",
        object_id=flow_run.id,
        before={"approval_status": FlowRun.ApprovalStatus.PENDING},
        after=after,
    )


def _approved_step(flow_run: FlowRun, task_run: TaskRun) -> dict[str, Any]:
    """What approving the parked step fixes; nothing for a step without its operation (it fails when run)."""
    if task_run.task_operation is None:
        return {}
    definition = task_run.task_operation.task_definition
    credential = credential_choice(
        organization_id=flow_run.organization_id, integration=definition.integration, triggered_by=flow_run.triggered_by
    )
    return approved_step_record(task_run=task_run, definition=definition, credential=credential)


@transaction.atomic
def run_reject(*, flow_run: FlowRun, user: User | None, comment: str = "", decided_by: str = "") -> FlowRun:
    """Rejects the pending approval: the run is cancelled with the reason, and no parked step runs."""
    _check_decider(flow_run, user)
    decided_by = decided_by or (user.email if user else "")
    _claim_decision(flow_run, FlowRun.ApprovalStatus.REJECTED, decided_by, comment)
    now = timezone.now()
    flow_run.task_runs.filter(status__in=[TaskRun.Status.AWAITING_APPROVAL, TaskRun.Status.PENDING]).update(
        status=TaskRun.Status.CANCELLED, end_time=now, modified_date=now
    )
    ApprovalDecision.objects.create(
        flow_run=flow_run,
        decision=ApprovalDecision.Decision.REJECTED,
        decided_by=decided_by,
        decided_by_user=user,
        comment=comment,
    )
    FlowRun.objects.filter(id=flow_run.id).update(
        status=FlowRun.Status.CANCELLED,
        status_reason=f"Rejected by {decided_by}" + (f": {comment}" if comment else "."),
        end_time=now,
        modified_date=now,
    )
    _decision_audit(
        flow_run, user, decided_by, after={"approval_status": FlowRun.ApprovalStatus.REJECTED, "comment": comment}
    )
    flow_run.refresh_from_db()
    return flow_run


def approvals_time_out(*, now: Any = None) -> list[UUID]:
    """Decides runs that waited longer than their organization's approval timeout, as the policy says."""
    now = now or timezone.now()
    decided = []
    waiting = FlowRun.objects.filter(
        approval_status=FlowRun.ApprovalStatus.PENDING, organization__approval_timeout__isnull=False
    ).select_related("organization")
    for flow_run in waiting:
        if flow_run.approval_requested_at is None:
            continue
        if flow_run.approval_requested_at + flow_run.organization.approval_timeout > now:  # type: ignore[operator]
            continue
        action = flow_run.organization.approval_timeout_action
        try:
            if action == Organization.ApprovalTimeoutAction.CONTINUE:
                run_approve(flow_run=flow_run, user=None, comment="Approval timed out.", decided_by=TIMEOUT_DECIDER)
            else:
                run_reject(flow_run=flow_run, user=None, comment="Approval timed out.", decided_by=TIMEOUT_DECIDER)
        except ConflictError:
            continue  # decided by someone in the meantime
        decided.append(flow_run.id)
    return decided
