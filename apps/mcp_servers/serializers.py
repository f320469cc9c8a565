"""MCP server shapes. ``env`` and ``headers`` go in, never out: reads list their names only."""

from rest_framework import serializers

from apps.core.serializers import StrictInputSerializer
from apps.core.validators import reject_nul_characters
from apps.mcp_servers.models import McpServer

MCP_SERVER_FIELDS = [
    "id",
    "name",
    "organization",
    "transport",
    "command",
    "args",
    "url",
    "env_names",
    "header_names",
    "integration",
    "integration_name",
    "tool_count",
    "last_synced_at",
    "last_sync_error",
    "created_date",
    "modified_date",
    "created_by_email",
    "modified_by_email",
]


class McpServerInputSerializer(StrictInputSerializer):
    ignored_fields = MCP_SERVER_FIELDS

    name = serializers.CharField(max_length=40, help_text="Its integration is named mcp:<name>.")
    transport = serializers.ChoiceField(choices=McpServer.Transport.choices)
    command = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=500,
        help_text="stdio: one of NEENA_MCP_STDIO_COMMANDS.",
    )
    args = serializers.ListField(
        child=serializers.CharField(max_length=1000, allow_blank=True, trim_whitespace=False),
        required=False,
        default=list,
        max_length=50,
    )
    env = serializers.DictField(
        child=serializers.CharField(max_length=4096, allow_blank=True, trim_whitespace=False),
        required=False,
        default=dict,
        validators=[reject_nul_characters],
        help_text="stdio: variables added to the server's environment; stored encrypted, never returned.",
    )
    url = serializers.CharField(required=False, default="", allow_blank=True, max_length=2000)
    headers = serializers.DictField(
        child=serializers.CharField(max_length=4096, allow_blank=True),
        required=False,
        default=dict,
        validators=[reject_nul_characters],
        help_text='streamable_http: e.g. {"Authorization": "Bearer ..."}; stored encrypted, never returned.',
    )
    organization = serializers.UUIDField(required=False, allow_null=True, default=None)


class McpServerSerializer(serializers.ModelSerializer):
    integration_name = serializers.CharField(source="integration.name", default=None, read_only=True)

    class Meta:
        model = McpServer
        fields = MCP_SERVER_FIELDS
