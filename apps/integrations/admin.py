"""The catalogue in the admin: read-only, since ``sync_catalog`` owns it."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.integrations.models import Integration, TaskDefinition, WebhookTriggerDefinition


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Integration)
class IntegrationAdmin(ReadOnlyAdmin):
    list_display = ["name", "short_name", "auth_type", "deleted_at"]
    search_fields = ["name", "short_name"]


@admin.register(TaskDefinition)
class TaskDefinitionAdmin(ReadOnlyAdmin):
    list_display = ["task_name", "integration", "python_method_name", "side_effect", "deleted_at"]
    list_filter = ["integration", "side_effect"]
    search_fields = ["task_name", "description", "python_method_name"]


@admin.register(WebhookTriggerDefinition)
class WebhookTriggerDefinitionAdmin(ReadOnlyAdmin):
    list_display = ["trigger_name", "integration", "signature_scheme", "deleted_at"]
    list_filter = ["integration"]
    search_fields = ["trigger_name", "description"]
