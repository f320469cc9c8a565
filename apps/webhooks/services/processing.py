"""Processing a stored trigger run: event fields, then the flow request, then the planned flow and its run.

A worker claims the run (received -> processing) with a conditional UPDATE, so a redelivered or duplicated job does
nothing. Processing happens in two transactions: the flow request is committed first (so a request the planner
cannot cover is still there to read and to generate again by hand); then the flow is planned, with no transaction
open, and saved and executed and the run completed in a second, short one. An expected failure fails the trigger run
with the reason. Only failures of the operation itself count against it (a creator who left, a template the planner
cannot cover, a definition's broken JSON path, a crash): at NEENA_WEBHOOK_MAX_CONSECUTIVE_FAILURES in a row the
operation is set to failed and accepts no more deliveries until it is updated; a success resets the count. Failures
caused by one event's content (a missing or mistyped field, values the flow cannot be planned with) fail that run
only: otherwise whoever can send one signed event could switch the operation off.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from apps.accounts.models import User
from apps.core.exceptions import ApplicationError, ConflictError, InputValidationError, NotFoundError
from apps.flows.models import FlowRequest
from apps.flows.planning.rules import PlanningError
from apps.flows.planning.service import catalogue_current, plan_request
from apps.flows.services import flow_generated_save, flow_plan, flow_request_create
from apps.runs.services.results import ENTITY_ID_KEY, ENTITY_SHORT_NAME_KEY, TRIGGER_RUN_KEY
from apps.runs.services.run_creation import flow_execute
from apps.webhooks.events import EventFieldError, EventPathError, event_fields_extract
from apps.webhooks.models import TriggerRun, WebhookTriggerOperation
from apps.webhooks.queueing import send_trigger_run
from apps.webhooks.template import template_for_planning, template_render, value_as_text

logger = logging.getLogger(__name__)

Status = TriggerRun.Status
OperationStatus = WebhookTriggerOperation.Status


class TriggerRunError(Exception):
    """An expected reason for a trigger run to fail; the message is kept as the run's reason."""


class RunOnlyError(TriggerRunError):
    """A reason that fails this run only, not counted against the operation."""


class EventContentError(RunOnlyError):
    """The run failed because of its event's content, not because of the operation: it fails this run only."""


class _PlanRefused(Exception):  # noqa: N818 (a signal between two functions here, not an error of its own)
    """The flow could not be planned (or the plan was refused): ``error`` is the planner's 422."""

    def __init__(self, error: InputValidationError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class SweepReport:
    requeued_received: int
    requeued_stalled: int


def trigger_run_triggered_by(*, operation: WebhookTriggerOperation) -> str:
    """What a trigger run's flow run records as its trigger."""
    return f"webhook:{operation.name}"


def _creator(operation: WebhookTriggerOperation) -> User:
    """The user the operation acts as: its creator, while still an active member of the operation's organization."""
    user = User.objects.filter(
        email=operation.created_by_email, is_active=True, memberships__organization_id=operation.organization_id
    ).first()
    if user is None:
        raise TriggerRunError(
            f"The operation's creator ({operation.created_by_email or 'unknown'}) is no longer an active member of "
            "its organization."
        )
    return user


def _request_metadata(trigger_run: TriggerRun, fields: dict[str, Any]) -> dict[str, Any]:
    """The event fields, plus the keys naming the entity the event is about (its latest flow result is kept under
    them) and the trigger run."""
    definition = trigger_run.operation.webhook_trigger_definition
    metadata = {
        **fields,
        ENTITY_SHORT_NAME_KEY: definition.integration.short_name,
        TRIGGER_RUN_KEY: str(trigger_run.id),
    }
    entity_id = fields.get(definition.entity_id_field) if definition.entity_id_field else None
    if entity_id not in (None, ""):
        metadata[ENTITY_ID_KEY] = value_as_text(entity_id)
    return metadata


def _flow_request_create(trigger_run: TriggerRun, user: User) -> FlowRequest:
    """Extracts the event fields, renders the template and creates the flow request as the operation's creator."""
    operation = trigger_run.operation
    try:
        fields = event_fields_extract(
            event_fields=operation.webhook_trigger_definition.event_fields, payload=trigger_run.payload
        )
    except EventPathError as error:
        raise TriggerRunError(str(error)) from None
    except EventFieldError as error:
        raise EventContentError(str(error)) from None
    with transaction.atomic():
        flow_request = flow_request_create(
            user=user,
            request_instructions=template_render(operation.template_body, fields),
            request_metadata=_request_metadata(trigger_run, fields),
            request_name=operation.name[:255],
            organization=operation.organization_id,
        )
        trigger_run.event_fields = fields
        trigger_run.flow_request = flow_request
        trigger_run.save(update_fields=["event_fields", "flow_request", "modified_date"])
    return flow_request


def _flow_start(trigger_run: TriggerRun, user: User, flow_request: FlowRequest) -> None:
    """Plans the flow, then generates and executes it and completes the trigger run in one short transaction.

    The flow is planned from the operation's template (``template_for_planning``): a placeholder whose value is free
    text stands for its event field in the request's metadata, so the event's words reach the steps as data, through
    those bindings, and can neither choose steps nor write a binding of their own; plain values (ids, numbers,
    addresses) are planned from as they are.

    Planning happens before any transaction or lock (the llm planner waits on a model). The plan is then used under
    the locks of the trigger run and of its operation, only if nothing it was made from changed meanwhile: the run is
    still this worker's (processing, no flow run), the operation still has the template planned from (else the run
    starts over, ``_start_over``), and the flow request is as it was (``flow_generated_save``).
    """
    operation = trigger_run.operation
    if not TriggerRun.objects.filter(id=trigger_run.id, status=Status.PROCESSING, flow_run__isnull=True).exists():
        return  # another worker got here first (a stalled run put back while its first worker still ran)
    try:
        draft = flow_plan(
            flow_request=flow_request,
            instructions=template_for_planning(operation.template_body, trigger_run.event_fields),
        )
    except InputValidationError as error:
        raise _PlanRefused(error) from None
    with transaction.atomic():
        locked = TriggerRun.objects.select_for_update().only("status", "flow_run").filter(id=trigger_run.id).first()
        if locked is None or locked.status != Status.PROCESSING or locked.flow_run_id is not None:
            return  # deleted with its operation, or taken by another worker while this one planned
        template = (
            WebhookTriggerOperation.objects.select_for_update(no_key=True)
            .filter(id=operation.id)
            .values_list("template_body", flat=True)
            .first()
        )
        if template != operation.template_body:
            _start_over(trigger_run, flow_request)
            return
        try:
            flow = flow_generated_save(user=user, flow_request=flow_request, draft=draft)
        except InputValidationError as error:
            raise _PlanRefused(error) from None
        except (ConflictError, NotFoundError) as error:
            raise RunOnlyError(f"The flow was not started: {error.message}") from None
        flow_run = flow_execute(
            user=user,
            flow=flow,
            flow_request=flow_request,
            triggered_by=trigger_run_triggered_by(operation=operation),
            trigger_webhook_operation=operation,
        )
        trigger_run.flow_run = flow_run
        trigger_run.status = Status.COMPLETED
        trigger_run.reason = ""
        trigger_run.save(update_fields=["flow_run", "status", "reason", "modified_date"])
        WebhookTriggerOperation.objects.filter(id=operation.id, consecutive_failures__gt=0).update(
            consecutive_failures=0
        )


def _start_over(trigger_run: TriggerRun, flow_request: FlowRequest) -> None:
    """The operation's template changed while the run's flow was planned: the plan (and the flow request rendered
    from the old template) no longer say what the operation now asks. The run goes back to received with neither, and
    is queued again once this commits, so its event is rendered and planned from the current template."""
    TriggerRun.objects.filter(id=trigger_run.id, status=Status.PROCESSING).update(
        status=Status.RECEIVED, flow_request=None, event_fields={}, modified_date=timezone.now()
    )
    FlowRequest.objects.filter(id=flow_request.id, flow__isnull=True).delete()
    trigger_run_id = trigger_run.id
    transaction.on_commit(lambda: send_trigger_run(trigger_run_id))


def _planning_failed_because_of_the_event(trigger_run: TriggerRun, flow_request: FlowRequest) -> bool:
    """Whether this event's own values are why its flow could not be planned.

    The planner reads an event's values only where they are plain (``template_for_planning``); free text already
    stands for its field. So the template is planned once more with the plain values standing for their fields too,
    which is what every event of the operation has in common: if that plans, this event's values were the cause; if
    it fails as well, or the event put nothing of its own into what was planned, the template itself cannot be
    planned, which is the operation's failure. Only planning is repeated, and only after a failure.
    """
    template = trigger_run.operation.template_body
    independent = template_for_planning(template, trigger_run.event_fields, plain_values=False)
    if independent == template_for_planning(template, trigger_run.event_fields):
        return False
    try:
        plan_request(flow_request, catalogue_current(flow_request.organization_id), instructions=independent)
    except PlanningError:
        return False
    return True


def _reason(error: Exception) -> str:
    if isinstance(error, InputValidationError):
        return "The flow could not be planned: " + " ".join(item.msg for item in error.items)
    if isinstance(error, ApplicationError):
        return error.message
    return str(error)


@transaction.atomic
def trigger_run_fail(*, trigger_run: TriggerRun, reason: str, counts_against_operation: bool = True) -> None:
    """Fails the run with the reason and, unless its event's content was the cause (``counts_against_operation``
    false), counts it against the operation, which is set to failed when the count of failures in a row reaches
    NEENA_WEBHOOK_MAX_CONSECUTIVE_FAILURES."""
    now = timezone.now()
    TriggerRun.objects.filter(id=trigger_run.id).update(status=Status.FAILED, reason=reason, modified_date=now)
    trigger_run.status, trigger_run.reason = Status.FAILED, reason
    if not counts_against_operation:
        return
    operations = WebhookTriggerOperation.objects.filter(id=trigger_run.operation_id)
    operations.update(consecutive_failures=F("consecutive_failures") + 1, last_failure_reason=reason)
    operations.filter(
        status=OperationStatus.ACTIVE, consecutive_failures__gte=settings.NEENA_WEBHOOK_MAX_CONSECUTIVE_FAILURES
    ).update(status=OperationStatus.FAILED, modified_date=now)


def trigger_run_process(*, trigger_run_id: UUID) -> TriggerRun | None:
    """Turns a received trigger run into a flow run; None when the run was not waiting (claimed or ended already).

    Steps: claim the run; find the operation's creator; extract the event fields, render the template and create the
    flow request (kept even if planning fails); generate and execute the flow; complete the run. Expected failures
    fail the run with the reason (``trigger_run_fail``), counted against the operation unless the event's content
    was the cause (``EventContentError``, ``_planning_failed_because_of_the_event``) or the run alone was hit
    (``RunOnlyError``: its flow request changed while it was planned). Database errors that may pass
    put the run back to received and are raised, for the task to retry.
    """
    claimed = TriggerRun.objects.filter(id=trigger_run_id, status=Status.RECEIVED).update(
        status=Status.PROCESSING, modified_date=timezone.now()
    )
    if not claimed:
        return None
    trigger_run = TriggerRun.objects.select_related(
        "operation__webhook_trigger_definition__integration", "flow_request"
    ).get(id=trigger_run_id)
    try:
        user = _creator(trigger_run.operation)
        flow_request = trigger_run.flow_request or _flow_request_create(trigger_run, user)
        try:
            _flow_start(trigger_run, user, flow_request)
        except _PlanRefused as refused:
            reason = _reason(refused.error)
            if _planning_failed_because_of_the_event(trigger_run, flow_request):
                raise EventContentError(reason) from None
            raise TriggerRunError(reason) from None
    except RunOnlyError as error:
        trigger_run_fail(trigger_run=trigger_run, reason=str(error), counts_against_operation=False)
    except (TriggerRunError, ApplicationError) as error:
        trigger_run_fail(trigger_run=trigger_run, reason=_reason(error))
    except (OperationalError, InterfaceError):
        _put_back(trigger_run_id)
        raise
    except Exception as error:  # a bug must still fail the run visibly, not leave it processing
        logger.exception("Trigger run %s failed unexpectedly", trigger_run_id)
        trigger_run_fail(trigger_run=trigger_run, reason=f"Unexpected error: {type(error).__name__}: {error}")
    trigger_run.refresh_from_db()
    return trigger_run


def _put_back(trigger_run_id: UUID) -> None:
    try:
        TriggerRun.objects.filter(id=trigger_run_id, status=Status.PROCESSING).update(status=Status.RECEIVED)
    except DatabaseError:
        logger.warning("Could not put trigger run %s back; the sweeper will.", trigger_run_id)


def trigger_runs_sweep() -> SweepReport:
    """Queues again the runs no worker took: received ones older than NEENA_REQUEUE_AFTER_SECONDS (their message was
    lost, or the broker was down), and processing ones past the task's time limit and a grace (their worker died)."""
    now = timezone.now()
    waiting = list(
        TriggerRun.objects.filter(
            status=Status.RECEIVED, modified_date__lt=now - timedelta(seconds=settings.NEENA_REQUEUE_AFTER_SECONDS)
        ).values_list("id", flat=True)[:1000]
    )
    lease = settings.CELERY_TASK_TIME_LIMIT + settings.NEENA_STEP_LEASE_GRACE_SECONDS
    stalled = list(
        TriggerRun.objects.filter(
            status=Status.PROCESSING, modified_date__lt=now - timedelta(seconds=lease)
        ).values_list("id", flat=True)[:1000]
    )
    if stalled:
        TriggerRun.objects.filter(id__in=stalled, status=Status.PROCESSING).update(
            status=Status.RECEIVED, modified_date=now
        )
    if waiting:
        TriggerRun.objects.filter(id__in=waiting, status=Status.RECEIVED).update(modified_date=now)
    for trigger_run_id in [*waiting, *stalled]:
        send_trigger_run(trigger_run_id)
    return SweepReport(requeued_received=len(waiting), requeued_stalled=len(stalled))
