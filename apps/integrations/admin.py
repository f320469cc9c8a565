"""The catalogue in the admin, read-only since ``sync_catalog`` (and an organization's MCP server sync) owns it: the
shared catalogue for every staff user, an organization's own integrations for its staff only; and the notifications
sent, read-only too, each organization's to its staff."""

from typing import Any, cast

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from apps.accounts.admin import OrganizationScopedAdmin, sees_every_organization
from apps.accounts.models import User
from apps.accounts.selectors import organization_ids_for_user
from apps.core.admin import ReadOnlyAdmin
from apps.integrations.models import Integration, Notification, TaskDefinition, WebhookTriggerDefinition


class CatalogueAdmin(ReadOnlyAdmin):
    """Shared rows (no organization) and the staff user's organizations' own; a superuser sees all."""

    organization_path = "organization"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        if sees_every_organization(request):
            return queryset
        organizations = organization_ids_for_user(user=cast(User, request.user))
        return queryset.filter(
            Q(**{f"{self.organization_path}__isnull": True}) | Q(**{f"{self.organization_path}__in": organizations})
        )


@admin.register(Integration)
class IntegrationAdmin(CatalogueAdmin):
    list_display = ["name", "short_name", "auth_type", "deleted_at"]
    search_fields = ["name", "short_name"]


@admin.register(TaskDefinition)
class TaskDefinitionAdmin(CatalogueAdmin):
    organization_path = "integration__organization"
    list_display = ["task_name", "integration", "python_method_name", "side_effect", "deleted_at"]
    list_filter = ["integration", "side_effect"]
    search_fields = ["task_name", "description", "python_method_name"]


@admin.register(WebhookTriggerDefinition)
class WebhookTriggerDefinitionAdmin(CatalogueAdmin):
    organization_path = "integration__organization"
    list_display = ["trigger_name", "integration", "signature_scheme", "deleted_at"]
    list_filter = ["integration"]
    search_fields = ["trigger_name", "description"]


NOTIFICATION_FIELDS = ("recipient", "message", "organization", "flow_run", "idempotency_key", "created_date")


@admin.register(Notification)
class NotificationAdmin(OrganizationScopedAdmin, ReadOnlyAdmin):
    """What the core ``Send Notification`` task sent, to whom, and for which run: a record, never edited; staff who are
    not superusers see their organizations' only."""

    list_display = ["recipient", "message_preview", "organization", "flow_run_link", "created_date"]
    list_filter = ["organization"]
    list_select_related = ["organization", "flow_run"]
    search_fields = ["recipient", "message"]
    fields = NOTIFICATION_FIELDS
    readonly_fields = NOTIFICATION_FIELDS

    @admin.display(description="message")
    def message_preview(self, notification: Notification) -> str:
        return Truncator(notification.message).chars(80)

    @admin.display(description="flow run", ordering="flow_run__created_date")
    def flow_run_link(self, notification: Notification) -> str:
        if notification.flow_run is None:
            return "-"
        url = reverse("admin:runs_flowrun_change", args=[notification.flow_run.pk])
        return format_html('<a href="{}">{}</a>', url, notification.flow_run)
