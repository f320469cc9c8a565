"""A streamable-HTTP MCP server built with the official SDK, served by uvicorn on a free port of 127.0.0.1.

Its tools: ``lookup_order`` (read-only, structured output), ``create_refund`` (no annotations: a side effect),
``slow_write`` (not read-only, sleeps longer than a step may wait) and ``failing`` (answers isError). Every request
must carry ``Authorization: Bearer <token>``; ``requests`` records the headers of each, to check what was sent.
"""

import socket
import threading
import time
from typing import Any

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from starlette.responses import JSONResponse

TOKEN = "mcp-test-token"


class FakeMcpHttpServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.mcp = MCPServer("orders")
        self._add_tools()
        app = self.mcp.streamable_http_app(stateless_http=True, json_response=True)
        outer = self

        async def guarded(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                headers = {key.decode().lower(): value.decode() for key, value in scope["headers"]}
                outer.requests.append(headers)
                if headers.get("authorization") != f"Bearer {TOKEN}":
                    await JSONResponse({"error": "unauthorized"}, status_code=401)(scope, receive, send)
                    return
            await app(scope, receive, send)

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(guarded, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def _add_tools(self) -> None:
        calls = self.calls

        @self.mcp.tool(annotations=ToolAnnotations(read_only_hint=True))
        def lookup_order(order_id: str) -> dict[str, Any]:
            """Look up an order by its id."""
            calls.append(("lookup_order", {"order_id": order_id}))
            return {"order_id": order_id, "status": "shipped", "total": 42.5}

        @self.mcp.tool()
        def create_refund(order_id: str, amount: float, reason: str = "customer request") -> str:
            """Refund part or all of an order."""
            calls.append(("create_refund", {"order_id": order_id, "amount": amount, "reason": reason}))
            return f"Refunded {amount} on {order_id}"

        @self.mcp.tool(annotations=ToolAnnotations(read_only_hint=False, idempotent_hint=False))
        async def slow_write(seconds: float) -> str:
            """Write something slowly."""
            calls.append(("slow_write", {"seconds": seconds}))
            await anyio.sleep(seconds)
            return "written"

        @self.mcp.tool(annotations=ToolAnnotations(read_only_hint=True))
        def failing(order_id: str) -> str:
            """Always fails."""
            raise ToolError(f"order {order_id} is archived")

    def remove_tool(self, name: str) -> None:
        self.mcp.remove_tool(name)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
