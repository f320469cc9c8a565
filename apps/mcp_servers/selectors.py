"""MCP server queries, scoped to the caller's organizations."""

from django.db.models import QuerySet

from apps.accounts.models import User
from apps.accounts.selectors import organization_ids_for_user
from apps.mcp_servers.models import McpServer

NEWEST_FIRST = ("-created_date", "-id")


def mcp_server_list_for_user(*, user: User) -> QuerySet[McpServer]:
    return (
        McpServer.objects.filter(organization_id__in=organization_ids_for_user(user=user))
        .select_related("integration")
        .order_by(*NEWEST_FIRST)
    )
