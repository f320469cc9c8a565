from django.contrib import admin

from apps.webhooks.models import WebhookTriggerOperation


@admin.register(WebhookTriggerOperation)
class WebhookTriggerOperationAdmin(admin.ModelAdmin):
    list_display = ["name", "webhook_trigger_definition", "status", "organization", "created_date"]
    list_filter = ["status", "organization"]
    search_fields = ["name", "template_body"]
    readonly_fields = ["id", "created_date", "modified_date", "created_by_email", "modified_by_email"]
