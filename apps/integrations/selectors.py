"""Catalogue queries. The catalogue is global (no organization owns it); lists show only live declarations."""

from django.db.models import QuerySet

from apps.integrations.models import Integration, TaskDefinition, WebhookTriggerDefinition

NEWEST_FIRST = ("-created_date", "-id")


def integration_list() -> QuerySet[Integration]:
    return Integration.objects.filter(deleted_at__isnull=True).order_by(*NEWEST_FIRST)


def integration_get_by_short_name(*, short_name: str) -> Integration | None:
    return integration_list().filter(short_name=short_name).first()


def task_definition_list(*, include_deleted: bool = False) -> QuerySet[TaskDefinition]:
    """Live task definitions (every one, deleted too, when asked: a flow may still name a removed one)."""
    queryset = TaskDefinition.objects.select_related("integration").order_by(*NEWEST_FIRST)
    return queryset if include_deleted else queryset.filter(deleted_at__isnull=True)


def webhook_trigger_definition_list(*, include_deleted: bool = False) -> QuerySet[WebhookTriggerDefinition]:
    queryset = WebhookTriggerDefinition.objects.select_related("integration").order_by(*NEWEST_FIRST)
    return queryset if include_deleted else queryset.filter(deleted_at__isnull=True)
