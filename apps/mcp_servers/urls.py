from apps.mcp_servers.views import McpServerViewSet

routes = [("mcp_servers", McpServerViewSet, "mcp-servers")]
