"""Catalogue queries. The shared catalogue belongs to no organization; an organization also sees its own
integrations (its MCP servers' tools) and never another's. Lists show only live declarations."""

from collections.abc import Iterable
from uuid import UUID

from django.db.models import Q, QuerySet

from apps.integrations.models import Integration, TaskDefinition, WebhookTriggerDefinition

NEWEST_FIRST = ("-created_date", "-id")


def _visible(organization_ids: Iterable[UUID] | None, prefix: str = "") -> Q:
    """Shared rows, and the rows of ``organization_ids`` (None: shared rows only)."""
    shared = Q(**{f"{prefix}organization__isnull": True})
    if organization_ids is None:
        return shared
    return shared | Q(**{f"{prefix}organization_id__in": organization_ids})


def integration_list(*, organization_ids: Iterable[UUID] | None = None) -> QuerySet[Integration]:
    return Integration.objects.filter(_visible(organization_ids), deleted_at__isnull=True).order_by(*NEWEST_FIRST)


def integration_get_by_short_name(*, short_name: str) -> Integration | None:
    return integration_list().filter(short_name=short_name).first()


def task_definition_list(
    *, organization_ids: Iterable[UUID] | None = None, include_deleted: bool = False
) -> QuerySet[TaskDefinition]:
    """Live task definitions the organizations see (every one, deleted too, when asked: a flow may still name a
    removed one)."""
    queryset = (
        TaskDefinition.objects.select_related("integration")
        .filter(_visible(organization_ids, "integration__"))
        .order_by(*NEWEST_FIRST)
    )
    return queryset if include_deleted else queryset.filter(deleted_at__isnull=True)


def webhook_trigger_definition_list(*, include_deleted: bool = False) -> QuerySet[WebhookTriggerDefinition]:
    queryset = WebhookTriggerDefinition.objects.select_related("integration").order_by(*NEWEST_FIRST)
    return queryset if include_deleted else queryset.filter(deleted_at__isnull=True)
