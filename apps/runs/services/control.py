"""Run control: cancel, retry the failed part, rerun from the start, and the sweeper that keeps runs moving."""

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from apps.accounts.models import Membership, User
from apps.accounts.roles import role_require
from apps.core.exceptions import ConflictError
from apps.runs.models import FlowRun, TaskRun
from apps.runs.queueing import ready_steps_send, send_steps
from apps.runs.services.approval import approvals_time_out
from apps.runs.services.readiness import flow_run_advance, flow_runs_stalled, task_runs_unclaimed
from apps.runs.services.run_creation import flow_execute, run_references_check, run_sources_check
from apps.runs.services.transitions import ready_step, step_abandon

logger = logging.getLogger(__name__)


@transaction.atomic
def run_cancel(*, flow_run: FlowRun, user: User, reason: str = "") -> FlowRun:
    """Stops the run: steps not started are cancelled; a step already running finishes, but nothing after it."""
    role_require(user=user, organization_id=flow_run.organization_id, role=Membership.Role.MEMBER)
    now = timezone.now()
    cancelled = (
        FlowRun.objects.filter(id=flow_run.id)
        .exclude(status__in=FlowRun.TERMINAL)
        .update(
            status=FlowRun.Status.CANCELLED,
            status_reason=f"Cancelled by {user.email}" + (f": {reason}" if reason else "."),
            approval_status=None
            if flow_run.approval_status == FlowRun.ApprovalStatus.PENDING
            else flow_run.approval_status,
            end_time=now,
            modified_date=now,
        )
    )
    if not cancelled:
        raise ConflictError(f"The flow run has already ended ({flow_run.status}).", code="run_ended")
    flow_run.task_runs.filter(status__in=[TaskRun.Status.PENDING, TaskRun.Status.AWAITING_APPROVAL]).update(
        status=TaskRun.Status.CANCELLED, end_time=now, modified_date=now
    )
    flow_run.refresh_from_db()
    return flow_run


@transaction.atomic
def run_retry(*, flow_run: FlowRun, user: User | None, actor: str = "") -> FlowRun:
    """Re-runs the failed steps and those after them, as the run's own flow version has them (also when the flow was
    edited since); completed steps keep their results. A run whose flow or request was deleted is not retried (409
    ``flow_deleted``, ``flow_request_deleted``, as a rerun): a deleted one cannot run again, its runs stay readable.
    The steps' tasks and the run's request are checked again first (``run_references_check``), and an approval given
    before is not carried over: a side effect asks for a new one. The move from failed is conditional (and under the
    run's row lock), so of two retries of one run one wins and the other answers 409 ``not_failed``. The run keeps
    its trigger but records who retried it (``retried_by_user``, ``retried_by_email``): under
    ``forbid_self_approval`` they may not decide on what the retry parks. ``actor`` names who retried when no user
    did (a command)."""
    if user is not None:
        role_require(user=user, organization_id=flow_run.organization_id, role=Membership.Role.MEMBER)
    locked = FlowRun.objects.select_for_update().select_related("flow", "flow_request").get(id=flow_run.id)
    if locked.status != FlowRun.Status.FAILED:
        raise ConflictError(f"Only a failed run can be retried; this one is {locked.status}.", code="not_failed")
    run_sources_check(flow=locked.flow, flow_request=locked.flow_request)
    again = locked.task_runs.filter(status__in=[TaskRun.Status.FAILED, TaskRun.Status.SKIPPED])
    run_references_check(
        organization_id=locked.organization_id,
        flow=locked.flow,
        flow_request=locked.flow_request,
        operations=[
            task_run.task_operation
            for task_run in again.select_related("task_operation__task_definition")
            if task_run.task_operation is not None
        ],
    )
    now = timezone.now()
    # The move from failed is itself conditional, so that it is taken once even where the row lock is not (SQLite).
    if not FlowRun.objects.filter(id=locked.id, status=FlowRun.Status.FAILED).update(
        status=FlowRun.Status.IN_PROGRESS,
        status_reason="",
        end_time=None,
        modified_by_email=user.email if user else actor,
        retried_by_user=user,
        retried_by_email=user.email if user else actor,
        modified_date=now,
    ):
        raise ConflictError("Only a failed run can be retried; it was retried meanwhile.", code="not_failed")
    again.update(
        status=TaskRun.Status.PENDING,
        error="",
        result=None,
        attempt=0,
        run_retries=models.F("run_retries") + 1,
        start_time=None,
        end_time=None,
        enqueued_at=None,
        approved_at=None,
        approved_step={},
        lease_expires_at=None,
        modified_date=now,
    )
    ready_steps_send(flow_run_advance(flow_run_id=locked.id))
    locked.refresh_from_db()
    return locked


class RerunVersion(models.TextChoices):
    """Which version a rerun executes: the source run's own (``pinned``) or the flow's latest."""

    PINNED = "pinned", "The run's own version"
    LATEST = "latest", "The flow's latest version"


def run_rerun(*, flow_run: FlowRun, user: User, version: str = RerunVersion.PINNED) -> FlowRun:
    """A new run for the same request, from the beginning, of the same flow version (``pinned``) or of the flow's
    latest one (``latest``); 409 when the flow or the request was deleted, moved to another organization, or a task
    of the version left the catalogue."""
    role_require(user=user, organization_id=flow_run.organization_id, role=Membership.Role.MEMBER)
    if flow_run.flow_request.organization_id != flow_run.organization_id:
        raise ConflictError(
            "The flow request no longer belongs to the run's organization.", code="organization_mismatch"
        )
    return flow_execute(
        user=user,
        flow=flow_run.flow,
        flow_request=flow_run.flow_request,
        triggered_by=user.email,
        rerun_of=flow_run,
        flow_version=flow_run.flow_version if version == RerunVersion.PINNED else None,
    )


@dataclass
class SweepReport:
    requeued_dead: int = 0
    failed_dead: int = 0
    requeued_lost: int = 0
    approvals_decided: int = 0
    advanced_stalled: int = 0


CALL_INTERRUPTED = (
    "The worker stopped while the step was calling its service; the call may have happened, so it is not made "
    "again. Retry the run to call it again."
)

WORKER_LOST = (
    "The worker stopped (its lease expired) before the step ended; the step was queued again, with the same "
    "idempotency key."
)


def _may_have_acted(task_run: TaskRun) -> bool:
    """Whether a step whose lease expired may have had its side effect: it was calling a service (in progress, which
    is written before the call) for a side-effecting task."""
    operation = task_run.task_operation
    return (
        task_run.status == TaskRun.Status.IN_PROGRESS
        and operation is not None
        and operation.task_definition.side_effect
    )


def runs_sweep(*, now: Any = None) -> SweepReport:
    """Keeps runs moving when something died. Run periodically by beat.

    Steps: (1) a running step whose lease expired lost its worker: its attempt ends "abandoned", and it goes back to
    pending and is queued again (a core side effect is found again through the same idempotency key), except a
    side-effecting step that was calling its service (in progress): the call may have happened, and a service need
    not honour the idempotency key, so the step fails (its attempt abandoned) and its run goes on to end, rather than
    acting twice; (2) a queued step no worker
    claimed for NEENA_REQUEUE_AFTER_SECONDS lost its message: it is queued again (claiming is atomic, so a late
    duplicate does nothing); (3) approvals past their organization's timeout are decided; (4) a run with nothing
    running, queued or waiting for NEENA_REQUEUE_AFTER_SECONDS lost the worker that was to ready its next steps or
    end it, between a step's end and that check: the run is examined again (readying twice is harmless).
    """
    now = now or timezone.now()
    report = SweepReport()
    expired = TaskRun.objects.filter(status__in=TaskRun.RUNNING, lease_expires_at__lt=now).select_related(
        "task_operation__task_definition__integration"
    )
    dead = []
    for task_run in expired:
        if _may_have_acted(task_run):
            if step_abandon(
                task_run,
                now=now,
                reason=CALL_INTERRUPTED,
                status=TaskRun.Status.FAILED,
                error=CALL_INTERRUPTED,
                lease_expires_at=None,
                end_time=now,
            ):
                logger.warning("Step %s lost its worker during its call; failing it, not calling again.", task_run.id)
                report.failed_dead += 1
                ready_steps_send(flow_run_advance(flow_run_id=task_run.flow_run_id))
        elif step_abandon(
            task_run,
            now=now,
            reason=WORKER_LOST,
            status=TaskRun.Status.PENDING,
            lease_expires_at=None,
            enqueued_at=now,
        ):
            logger.warning("Step %s lost its worker (lease expired); queueing it again.", task_run.id)
            dead.append(ready_step(task_run))
    send_steps(dead)
    report.requeued_dead = len(dead)

    lost = []
    for task_run in task_runs_unclaimed(older_than=now - timedelta(seconds=settings.NEENA_REQUEUE_AFTER_SECONDS)):
        if TaskRun.objects.filter(id=task_run.id, status=TaskRun.Status.PENDING).update(enqueued_at=now):
            lost.append(ready_step(task_run))
    send_steps(lost)
    report.requeued_lost = len(lost)

    report.approvals_decided = len(approvals_time_out(now=now))

    stalled = flow_runs_stalled(older_than=now - timedelta(seconds=settings.NEENA_REQUEUE_AFTER_SECONDS))
    for flow_run_id in stalled:
        logger.warning("Run %s stalled between a step's end and its next steps; examining it again.", flow_run_id)
        try:
            ready_steps_send(flow_run_advance(flow_run_id=flow_run_id))
        except Exception:  # one broken run must not stop the sweep of the others
            logger.exception("Could not examine run %s again.", flow_run_id)
    report.advanced_stalled = len(stalled)
    return report
