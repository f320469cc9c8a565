"""The audit log in the admin: read-only, and only the events of the staff user's organizations."""

from django.contrib import admin

from apps.accounts.admin import OrganizationScopedAdmin
from apps.audit.models import AuditEvent
from apps.core.admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(OrganizationScopedAdmin, ReadOnlyAdmin):
    """Every event, never added, changed or deleted here (the model refuses it too)."""

    list_display = ["created_date", "action", "object_type", "object_id", "actor_email", "organization"]
    list_filter = ["action", "object_type", "organization"]
    list_select_related = ["organization"]
    search_fields = ["actor_email", "object_id", "action"]
    ordering = ["-created_date"]
    fields = [
        "id",
        "organization",
        "created_date",
        "actor",
        "actor_email",
        "action",
        "object_type",
        "object_id",
        "before",
        "after",
    ]
