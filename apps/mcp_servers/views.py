"""``/api/v1/mcp_servers/``: register, list, read, sync and remove MCP servers. Secrets are never returned."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.query import IdQuerySerializer
from apps.core.schema import ErrorSerializer
from apps.core.viewsets import QueryStringViewSet
from apps.mcp_servers import services
from apps.mcp_servers.models import McpServer
from apps.mcp_servers.selectors import mcp_server_list_for_user
from apps.mcp_servers.serializers import McpServerInputSerializer, McpServerSerializer


@extend_schema_view(
    list=extend_schema(summary="Read all MCP servers"),
    retrieve=extend_schema(summary="Read an MCP server", parameters=[IdQuerySerializer]),
    create=extend_schema(
        summary="Register an MCP server",
        description="Starts (stdio) or connects to (streamable_http) the server and lists its tools; each becomes a "
        "task definition of the integration mcp:<name>, seen by this organization only. A tool not annotated "
        "readOnlyHint: true is a side effect, which the default approval policy parks for approval. A stdio command "
        "must be one of NEENA_MCP_STDIO_COMMANDS; an HTTP server goes through the egress guard. A server that "
        "cannot be listed is not saved (422 naming why).",
        request=McpServerInputSerializer,
        responses=McpServerSerializer,
    ),
    destroy=extend_schema(
        summary="Remove an MCP server",
        description="Its task definitions are marked deleted: flows naming them keep them, and their steps fail "
        "saying the server was removed.",
        parameters=[IdQuerySerializer],
        responses=McpServerSerializer,
    ),
)
class McpServerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, QueryStringViewSet):
    serializer_class = McpServerSerializer

    def get_queryset(self) -> QuerySet[McpServer]:
        return mcp_server_list_for_user(user=self.user)

    def create(self, request: Request) -> Response:
        serializer = McpServerInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data["organization"] = self.target_organization(data.get("organization"))
        server = services.mcp_server_register(user=self.user, **data)
        return Response(McpServerSerializer(server).data)

    def destroy(self, request: Request) -> Response:
        server = self.get_object()
        body = McpServerSerializer(server).data
        services.mcp_server_delete(user=self.user, server=server)
        return Response(body)

    @extend_schema(
        summary="Sync an MCP server's tools",
        description="Lists the tools again: changed ones are updated, new ones added, removed ones marked deleted. "
        "A server that cannot be listed keeps its tools and answers 502 mcp_server_unavailable; last_sync_error "
        "says why.",
        parameters=[IdQuerySerializer],
        request=None,
        responses={200: McpServerSerializer, 502: ErrorSerializer},
    )
    @action(detail=False, methods=["post"], url_path="sync")
    def sync(self, request: Request) -> Response:
        self.refuse_body_fields()
        server = services.mcp_server_sync(user=self.user, server=self.get_object())
        return Response(McpServerSerializer(server).data)
