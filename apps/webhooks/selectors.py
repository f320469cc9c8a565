"""Webhook trigger operation and trigger run queries, scoped to the caller's organizations."""

from uuid import UUID

from django.db.models import QuerySet

from apps.accounts.models import User
from apps.accounts.selectors import organization_ids_for_user
from apps.webhooks.models import TriggerRun, WebhookTriggerOperation

NEWEST_FIRST = ("-created_date", "-id")


def trigger_operation_list_for_user(*, user: User) -> QuerySet[WebhookTriggerOperation]:
    return WebhookTriggerOperation.objects.filter(organization_id__in=organization_ids_for_user(user=user)).order_by(
        *NEWEST_FIRST
    )


def trigger_operation_for_delivery(*, operation_id: UUID) -> WebhookTriggerOperation | None:
    """The active operation an inbound delivery is addressed to, with its definition (one query); None for an
    unknown, inactive or failed one, which the caller cannot tell apart."""
    return (
        WebhookTriggerOperation.objects.select_related("webhook_trigger_definition")
        .filter(id=operation_id, status=WebhookTriggerOperation.Status.ACTIVE)
        .first()
    )


def trigger_run_list_for_user(*, user: User, operation_id: UUID | None = None) -> QuerySet[TriggerRun]:
    """The trigger runs of the user's organizations, newest first; only one operation's when ``operation_id`` is
    given."""
    queryset = TriggerRun.objects.filter(organization_id__in=organization_ids_for_user(user=user))
    if operation_id is not None:
        queryset = queryset.filter(operation_id=operation_id)
    return queryset.order_by(*NEWEST_FIRST)
