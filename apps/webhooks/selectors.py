"""Webhook trigger operation queries, scoped to the caller's organizations."""

from django.db.models import QuerySet

from apps.accounts.models import User
from apps.accounts.selectors import organization_ids_for_user
from apps.webhooks.models import WebhookTriggerOperation

NEWEST_FIRST = ("-created_date", "-id")


def trigger_operation_list_for_user(*, user: User) -> QuerySet[WebhookTriggerOperation]:
    return WebhookTriggerOperation.objects.filter(organization_id__in=organization_ids_for_user(user=user)).order_by(
        *NEWEST_FIRST
    )
