"""A fake Slack Web API on 127.0.0.1, answering in Slack's own ``{"ok": ...}`` shapes.

It checks the bot token (``Authorization: Bearer ...``) and answers ``{"ok": false, "error": "invalid_auth"}`` (HTTP
200, as Slack does) otherwise. Tests seed channels with ``add_channel(...)``, queue error answers with
``fail_next(...)``, and read back ``requests`` (what came in) and ``messages`` (what was posted).

Served: ``chat.postMessage`` (JSON or form body; channel by ID or ``#name``; ``thread_ts`` for replies) and
``conversations.list`` (GET query or form body; ``types``, ``exclude_archived``, ``limit`` and cursor pagination with
``response_metadata.next_cursor``).

Usage::

    slack = FakeSlack()
    general = slack.add_channel("general")
    with override_settings(NEENA_SLACK_BASE_URL=slack.base_url):
        ...
    assert slack.messages[-1]["channel"] == general["id"]
    slack.stop()
"""

import base64
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

# The token the fake accepts unless told otherwise: what a test stores as the Slack credential's access_token.
BOT_TOKEN = "xoxb-1234-5678-fake-bot-token"
TEAM_ID = "T0NEENA01"
BOT_USER_ID = "U0NEENABOT"
BOT_ID = "B0NEENABOT"


@dataclass
class ReceivedRequest:
    """One request as the fake received it. ``path`` is e.g. ``/api/chat.postMessage``; ``headers`` is
    case-insensitive; ``body`` is the decoded JSON or form body (None without one)."""

    method: str
    path: str
    query: dict[str, str]
    headers: httpx.Headers
    body: Any


@dataclass
class Failure:
    """A queued error answer for the next request: ``{"ok": false, "error": error}`` with this HTTP status."""

    status: int
    error: str
    headers: dict[str, str] = field(default_factory=dict)


class FakeSlack:
    """A running fake Slack; ``base_url`` (ending in ``/api``) goes into NEENA_SLACK_BASE_URL."""

    def __init__(self, *, token: str = BOT_TOKEN) -> None:
        self.token = token
        self.channels: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.requests: list[ReceivedRequest] = []
        self.failures: deque[Failure] = deque()
        self._lock = threading.Lock()
        self._counter = 0

        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, headers, payload = fake._answer(
                    self.command, self.path, httpx.Headers(self.headers.items()), raw
                )
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle  # noqa: N815 - the names http.server dispatches to

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/api"

    # --- Seeding and controlling -------------------------------------------------------------------------------------

    def _next(self) -> int:
        self._counter += 1
        return self._counter

    def add_channel(
        self, name: str, *, is_private: bool = False, is_archived: bool = False, num_members: int = 3
    ) -> dict[str, Any]:
        """Seeds a channel as conversations.list describes one; returns it."""
        channel_id = f"C{self._next():010d}"
        channel = {
            "id": channel_id,
            "name": name,
            "is_channel": not is_private,
            "is_group": is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": is_private,
            "created": int(time.time()),
            "is_archived": is_archived,
            "is_general": name == "general",
            "unlinked": 0,
            "name_normalized": name,
            "is_shared": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": TEAM_ID,
            "creator": "U0CREATOR1",
            "is_ext_shared": False,
            "shared_team_ids": [TEAM_ID],
            "is_member": True,
            "num_members": num_members,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
            "previous_names": [],
        }
        self.channels.append(channel)
        return channel

    def fail_next(self, status: int = 200, headers: dict[str, str] | None = None, error: str = "") -> None:
        """Queues an error answer for the next request: ``fail_next(429, {"Retry-After": "30"})`` (Slack's rate
        limit), ``fail_next(503)``, or ``fail_next(error="channel_not_found")`` (HTTP 200, ok false)."""
        default = "ratelimited" if status == 429 else "service_unavailable" if status >= 500 else "fatal_error"
        self.failures.append(Failure(status, error or default, headers or {}))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "FakeSlack":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- Answering ---------------------------------------------------------------------------------------------------

    def _answer(
        self, method: str, target: str, headers: httpx.Headers, raw: bytes
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        split = urlsplit(target)
        query = dict(parse_qsl(split.query))
        content_type = headers.get("Content-Type", "")
        body: Any = None
        if raw and content_type.startswith("application/json"):
            body = json.loads(raw)
        elif raw:
            body = dict(parse_qsl(raw.decode()))
        with self._lock:
            self.requests.append(ReceivedRequest(method, split.path, query, headers, body))
            if self.failures:
                failure = self.failures.popleft()
                return failure.status, failure.headers, {"ok": False, "error": failure.error}
            authorization = headers.get("Authorization", "")
            if not authorization.startswith("Bearer "):
                return 200, {}, {"ok": False, "error": "not_authed"}
            if authorization.removeprefix("Bearer ") != self.token:
                return 200, {}, {"ok": False, "error": "invalid_auth"}
            arguments = {**query, **(body if isinstance(body, dict) else {})}
            answer: dict[str, Any]
            if split.path == "/api/chat.postMessage" and method == "POST":
                answer = self._post_message(arguments)
            elif split.path == "/api/conversations.list":
                answer = self._conversations_list(arguments)
            else:
                return 404, {}, {"ok": False, "error": "unknown_method"}
            if answer["ok"] and content_type.startswith("application/json") and "charset" not in content_type:
                # Slack accepts a JSON body without a charset but warns about it.
                answer["warning"] = "missing_charset"
                answer["response_metadata"] = {**answer.get("response_metadata", {}), "warnings": ["missing_charset"]}
            return 200, {}, answer

    def _channel(self, reference: str) -> dict[str, Any] | None:
        name = reference.removeprefix("#")
        return next(
            (channel for channel in self.channels if reference == channel["id"] or channel["name"] == name), None
        )

    def _post_message(self, arguments: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(arguments.get("channel") or ""))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if channel["is_archived"]:
            return {"ok": False, "error": "is_archived"}
        text = arguments.get("text")
        if not text and not arguments.get("blocks") and not arguments.get("attachments"):
            return {"ok": False, "error": "no_text"}
        ts = f"{int(time.time())}.{self._next():06d}"
        message: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "text": text,
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "ts": ts,
            "team": TEAM_ID,
        }
        if arguments.get("thread_ts"):
            message["thread_ts"] = str(arguments["thread_ts"])
        self.messages.append({**message, "channel": channel["id"]})
        return {"ok": True, "channel": channel["id"], "ts": ts, "message": message}

    def _conversations_list(self, arguments: dict[str, Any]) -> dict[str, Any]:
        types = str(arguments.get("types") or "public_channel").split(",")
        exclude_archived = str(arguments.get("exclude_archived", "false")).lower() in ("true", "1")
        try:
            limit = int(arguments.get("limit") or 100)
        except ValueError:
            return {"ok": False, "error": "invalid_limit"}
        cursor = str(arguments.get("cursor") or "")
        try:
            offset = int(base64.b64decode(cursor).decode().removeprefix("offset:")) if cursor else 0
        except ValueError:
            return {"ok": False, "error": "invalid_cursor"}
        if not 1 <= limit <= 1000:
            return {"ok": False, "error": "invalid_limit"}
        matching = [
            channel
            for channel in self.channels
            if ("private_channel" if channel["is_private"] else "public_channel") in types
            and not (exclude_archived and channel["is_archived"])
        ]
        page = matching[offset : offset + limit]
        more = offset + limit < len(matching)
        next_cursor = base64.b64encode(f"offset:{offset + limit}".encode()).decode() if more else ""
        return {"ok": True, "channels": page, "response_metadata": {"next_cursor": next_cursor}}
