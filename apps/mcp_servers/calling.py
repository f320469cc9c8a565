"""Running a step whose task definition is an MCP tool: ``tools/call`` with the prepared parameters.

``isError`` fails the step with the tool's message; structured content (or the text) becomes its result. A call is
retried (as the definition's retry policy allows) when it surely never reached the server, or when the tool declares
itself read-only or idempotent; a call that may have reached a tool promising neither fails instead of risking doing
its side effect twice.
"""

from typing import Any

from apps.core.exceptions import InputValidationError
from apps.credentials.encryption import DecryptionError
from apps.integrations import egress
from apps.integrations.execution import TaskContext, TaskError, TaskImplementation, TransientTaskError
from apps.integrations.models import TaskDefinition
from apps.mcp_servers.client import McpProtocolError, McpUnavailableError, tool_call
from apps.mcp_servers.models import McpServer
from apps.mcp_servers.services import mcp_server_address, mcp_server_check
from apps.mcp_servers.tools import error_message, result_outputs


def _server(definition: TaskDefinition) -> McpServer:
    server = McpServer.objects.filter(integration_id=definition.integration_id).first()
    if server is None:
        raise TaskError(f"The MCP server of '{definition.task_name}' was removed.")
    if definition.deleted_at is not None:
        raise TaskError(f"The MCP server '{server.name}' no longer offers the tool '{definition.python_method_name}'.")
    return server


def tool_implementation(definition: TaskDefinition) -> TaskImplementation:
    """The implementation of an MCP tool's task definition."""

    def call(context: TaskContext, **parameters: Any) -> dict[str, Any]:
        server = _server(definition)
        try:
            address = mcp_server_address(server)
        except DecryptionError as error:
            raise TaskError(f"The MCP server '{server.name}''s secrets cannot be decrypted: {error}") from error
        try:
            # The operator's allow-list as it is now: a command removed from it since registration runs no more.
            mcp_server_check(
                name=server.name,
                transport=server.transport,
                command=address.command,
                args=address.args,
                env=address.env,
                url=address.url,
                headers=address.headers,
            )
        except InputValidationError as error:
            raise TaskError(" ".join(item.msg for item in error.items)) from error
        arguments = {name: value for name, value in parameters.items() if value is not None}
        hints = server.tool_hints.get(definition.python_method_name, {})
        repeatable = bool(hints.get("read_only") or hints.get("idempotent"))
        try:
            result = tool_call(address, definition.python_method_name, arguments, timeout=context.time_limit_seconds)
        except egress.EgressRefusedError as error:
            raise TaskError(str(error)) from error
        except McpProtocolError as error:
            raise TaskError(str(error)) from error
        except McpUnavailableError as error:
            if error.sent and not repeatable:
                raise TaskError(
                    f"{error} The call may have reached the tool, which is neither read-only nor idempotent: it is not "
                    "repeated, so that its effect cannot happen twice."
                ) from error
            raise TransientTaskError(str(error)) from error
        if result.is_error:
            raise TaskError(f"The tool '{definition.python_method_name}' failed: {error_message(result)}")
        return result_outputs(result)

    return call
