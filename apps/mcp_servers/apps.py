from django.apps import AppConfig


class McpServersConfig(AppConfig):
    name = "apps.mcp_servers"
    verbose_name = "MCP servers"

    def ready(self) -> None:
        """The engine finds the implementation of an MCP tool's task definition through the integrations app's
        registry, so that app never imports this one."""
        from apps.integrations.execution import implementation_source_register
        from apps.mcp_servers.calling import tool_implementation
        from apps.mcp_servers.tools import CLASS_NAME

        implementation_source_register(CLASS_NAME, tool_implementation)
