"""The body-size limit at the ASGI layer, before Django buffers the body.

Django's ASGI handler reads the whole body (to a temporary file past FILE_UPLOAD_MAX_MEMORY_SIZE) before any
middleware runs, so ``BodySizeLimitMiddleware`` only saves the parsing, not the reading. And a chunked body, which
has no Content-Length, is never checked by Django at all; DRF, which decides from Content-Length whether there is a
body, then reads none and answers as if the client had sent nothing. This wrapper answers 413 for a declared length
past the limit without reading the body, and reads a body without a declared length only up to the limit: past it,
413; within it, the body goes on to Django with its Content-Length, so DRF parses it like any other.
"""

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from django.conf import settings

# The types Django's ASGIHandler declares.
Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodySizeLimit:
    """ASGI middleware: 413 for a body larger than DATA_UPLOAD_MAX_MEMORY_SIZE (NEENA_MAX_BODY_BYTES)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if scope["type"] != "http" or limit is None:
            await self.app(scope, receive, send)
            return
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if declared is not None:
            if declared.isdigit() and int(declared) > limit:
                await _too_large(send, limit)
                return
            await self.app(scope, receive, send)
            return

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        scope = {**scope, "headers": [*scope["headers"], (b"content-length", str(len(body)).encode())]}
        await self.app(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the buffered body once, then what the client sends next (its disconnect)."""
    delivered = False

    async def replayed() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


async def _too_large(send: Send, limit: int) -> None:
    body = orjson.dumps({"detail": f"Request body is larger than {limit} bytes.", "code": "request_too_large"})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
