"""Talking to an MCP server with the official ``mcp`` SDK: list its tools, call one.

Each call opens its own session (start the stdio process or connect over streamable HTTP, initialize, do the one
request, close): a server that died or hung since the last step costs nothing but the next start, and no process
outlives the step that needed it. The SDK is asynchronous; the engine's steps are not, so each call runs its own
event loop (``anyio.run``) for as long as it lasts.

Streamable-HTTP connections go through the egress guard (``apps.integrations.egress``): the host is resolved once,
every address is checked, and the socket connects to a checked address, as for every connector.
"""

import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpcore2
import httpx2
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, PaginatedRequestParams, Tool

from apps.integrations import egress

# The most tools one server may declare, and the most bytes of one tool's schemas: a server that answers with more
# is refused whole at sync, rather than filling the catalogue.
MAX_TOOLS = 500
MAX_SCHEMA_BYTES = 64 * 1024
# The most bytes of stderr kept to explain why a stdio server failed.
STDERR_TAIL_BYTES = 2000


class McpUnavailableError(Exception):
    """The server could not be reached, started or initialized, or did not answer in time: nothing was asked of it
    yet (``sent`` False), or a tool call was sent and its outcome is unknown (``sent`` True)."""

    def __init__(self, message: str, *, sent: bool = False) -> None:
        super().__init__(message)
        self.sent = sent


class McpProtocolError(Exception):
    """The server answered, but not with what MCP promises (too many tools, an oversized schema, an error reply)."""


@dataclass(frozen=True)
class ServerAddress:
    """Where a server is and how to start it; ``env`` and ``headers`` are the decrypted secrets."""

    transport: str
    command: str = ""
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class _GuardedAsyncBackend(httpcore2.AsyncNetworkBackend):
    """httpcore2's socket layer with the egress guard in front (the async twin of ``egress.GuardedNetworkBackend``):
    each connection goes to a checked address of its host, while TLS and the Host header keep the name."""

    def __init__(self) -> None:
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        try:
            # Resolving blocks: in a worker thread, off the event loop. EgressRefusedError passes through unwrapped.
            addresses = await anyio.to_thread.run_sync(egress.checked_addresses, host, port)
        except OSError as error:
            raise httpcore2.ConnectError(f"{host} could not be resolved: {error}") from error
        *others, last = [str(address) for address in addresses]
        for address in others:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore2.ConnectError:
                continue  # nothing was sent: the next address may answer
        return await self._inner.connect_tcp(last, port, timeout, local_address, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _guarded_http_client(headers: dict[str, str], timeout: float, refusals: list[int]) -> httpx2.AsyncClient:
    """An HTTP client through the egress guard that notes the status of every refused request in ``refusals`` (the
    SDK reports them only as "an error response")."""

    async def note_refusal(response: httpx2.Response) -> None:
        if response.status_code >= 400:
            refusals.append(response.status_code)

    transport = httpx2.AsyncHTTPTransport(trust_env=False)
    transport._pool = httpcore2.AsyncConnectionPool(
        ssl_context=egress.tls_context(), network_backend=_GuardedAsyncBackend()
    )
    return httpx2.AsyncClient(
        transport=transport,
        headers=headers,
        timeout=timeout,
        trust_env=False,
        follow_redirects=False,
        event_hooks={"response": [note_refusal]},
    )


async def _with_session(address: ServerAddress, timeout: float, work: Any, stderr: Any, refusals: list[int]) -> Any:
    if address.transport == "stdio":
        parameters = StdioServerParameters(command=address.command, args=list(address.args), env=address.env or None)
        async with stdio_client(parameters, errlog=stderr) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return await work(session)
    async with (
        _guarded_http_client(address.headers, timeout, refusals) as http,
        streamable_http_client(address.url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        return await work(session)


def _run(address: ServerAddress, timeout: float, work: Any, *, call: bool = False) -> Any:
    """Runs ``work(session)`` in a session of its own, within ``timeout`` seconds in all; errors as this module's."""
    sent = {"call": False}
    refusals: list[int] = []

    async def tracked(session: ClientSession) -> Any:
        sent["call"] = call
        return await work(session)

    async def main() -> Any:
        with anyio.fail_after(timeout):
            return await _with_session(address, timeout, tracked, stderr, refusals)

    with tempfile.TemporaryFile(mode="w+") as stderr:
        try:
            return anyio.run(main)
        except egress.EgressRefusedError:
            raise
        except McpProtocolError:
            raise
        except TimeoutError as error:
            message = f"The MCP server did not answer within {timeout:g} s."
            raise McpUnavailableError(message, sent=sent["call"]) from error
        except Exception as error:  # the SDK wraps failures in exception groups; report the innermost
            raise McpUnavailableError(_describe(error, stderr, refusals), sent=sent["call"]) from error


def _describe(error: BaseException, stderr: Any, refusals: list[int]) -> str:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    if isinstance(error, egress.EgressRefusedError):
        return str(error)
    message = f"The MCP server failed: {type(error).__name__}: {error}".strip()
    if refusals:
        message += f" (it answered HTTP {refusals[-1]})"
    stderr.seek(0)
    tail = stderr.read()[-STDERR_TAIL_BYTES:].strip()
    return f"{message} (stderr: {tail})" if tail else message


def _refused_inside(error: BaseException) -> egress.EgressRefusedError | None:
    if isinstance(error, egress.EgressRefusedError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _refused_inside(inner)
            if found is not None:
                return found
    cause = error.__cause__ or error.__context__
    return _refused_inside(cause) if cause is not None and cause is not error else None


def tools_list(address: ServerAddress, *, timeout: float) -> list[Tool]:
    """Every tool the server declares (following pagination), at most MAX_TOOLS."""

    async def work(session: ClientSession) -> list[Tool]:
        tools: list[Tool] = []
        cursor: str | None = None
        while True:
            page = await session.list_tools(params=PaginatedRequestParams(cursor=cursor) if cursor else None)
            tools.extend(page.tools)
            if len(tools) > MAX_TOOLS:
                raise McpProtocolError(f"The MCP server declares more than {MAX_TOOLS} tools.")
            cursor = page.next_cursor
            if not cursor:
                return tools

    return _guarded(lambda: _run(address, timeout, work))


def tool_call(address: ServerAddress, name: str, arguments: dict[str, Any], *, timeout: float) -> CallToolResult:
    """The server's answer to ``tools/call``: its ``is_error`` flag, content and structured content."""

    async def work(session: ClientSession) -> CallToolResult:
        return await session.call_tool(name, arguments)

    return _guarded(lambda: _run(address, timeout, work, call=True))


def _guarded(call: Any) -> Any:
    """An egress refusal the SDK wrapped somewhere in its exception groups is raised as itself."""
    try:
        return call()
    except McpUnavailableError as error:
        refused = _refused_inside(error)
        if refused is not None:
            raise refused from None
        raise


def schema_size(tool: Tool) -> int:
    return len(json.dumps([tool.input_schema, tool.output_schema], default=str))
