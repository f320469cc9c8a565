"""MCP servers in the admin: read-only, each organization's to its staff. Registering, syncing and removing go
through the API (``/api/v1/mcp_servers/``), which starts or reaches the server; secrets are never shown."""

from django.contrib import admin

from apps.accounts.admin import OrganizationScopedAdmin
from apps.core.admin import ReadOnlyAdmin
from apps.mcp_servers.models import McpServer


@admin.register(McpServer)
class McpServerAdmin(OrganizationScopedAdmin, ReadOnlyAdmin):
    list_display = ["name", "transport", "organization", "tool_count", "last_synced_at", "last_sync_error"]
    list_filter = ["transport", "organization"]
    list_select_related = ["organization"]
    search_fields = ["name", "command", "url"]
    fields = [
        "id",
        "organization",
        "name",
        "transport",
        "command",
        "args",
        "url",
        "env_names",
        "header_names",
        "integration",
        "tool_count",
        "tool_hints",
        "last_synced_at",
        "last_sync_error",
        "created_date",
        "created_by_email",
    ]
