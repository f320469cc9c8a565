"""A fake HTTP service on 127.0.0.1 for the ``http`` connector: any method, any path, answers queued by the test.

Tests queue what it answers next (status, headers, a JSON or text body) and read back the requests it received:
method, path with query, headers and raw body.
"""

import json
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        """A header by case-insensitive name."""
        return next((value for key, value in self.headers.items() if key.lower() == name.lower()), None)

    def json(self) -> Any:
        return json.loads(self.body)


class FakeHTTPService:
    """``base_url`` is ``http://127.0.0.1:<port>`` (https with a ``tls`` server context); ``reply(...)`` queues
    answers (200 with an empty body when none is queued); ``requests`` holds what came in."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[ReceivedRequest] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fake.requests.append(ReceivedRequest(self.command, self.path, dict(self.headers), body))
                reply = fake.replies.popleft() if fake.replies else Reply()
                time.sleep(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            def do_GET(self) -> None:
                self._handle()

            def do_HEAD(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def do_PUT(self) -> None:
                self._handle()

            def do_PATCH(self) -> None:
                self._handle()

            def do_DELETE(self) -> None:
                self._handle()

            def do_OPTIONS(self) -> None:
                self._handle()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.base_url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"

    def reply(
        self,
        body: Any = b"",
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        content_type: str = "",
        delay: float = 0.0,
    ) -> None:
        """Queues an answer: bytes and str go as they are, anything else as JSON."""
        extra = dict(headers or {})
        if isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
            extra.setdefault("Content-Type", content_type or "text/plain; charset=utf-8")
        else:
            data = json.dumps(body).encode()
            extra.setdefault("Content-Type", content_type or "application/json")
        self.replies.append(Reply(status=status, body=data, headers=extra, delay=delay))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
