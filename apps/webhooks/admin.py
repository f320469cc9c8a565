"""Admin pages for webhook trigger operations and their trigger runs; secrets are never shown, runs are read-only
(they are written by deliveries and workers only)."""

from django.contrib import admin
from django.http import HttpRequest

from apps.webhooks.models import TriggerRun, WebhookTriggerOperation


@admin.register(WebhookTriggerOperation)
class WebhookTriggerOperationAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "webhook_trigger_definition",
        "status",
        "consecutive_failures",
        "organization",
        "created_date",
    ]
    list_filter = ["status", "organization"]
    search_fields = ["name", "template_body"]
    exclude = ["signing_secret_ciphertext"]
    readonly_fields = [
        "id",
        "consecutive_failures",
        "last_failure_reason",
        "created_date",
        "modified_date",
        "created_by_email",
        "modified_by_email",
    ]


@admin.register(TriggerRun)
class TriggerRunAdmin(admin.ModelAdmin):
    list_display = ["delivery_id", "operation", "status", "created_date", "flow_run"]
    list_filter = ["status", "organization"]
    search_fields = ["delivery_id", "reason"]
    list_select_related = ["operation", "flow_run"]
    raw_id_fields = ["operation", "flow_request", "flow_run"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: TriggerRun | None = None) -> bool:
        return False
