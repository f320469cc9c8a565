"""A fake Zendesk Support API on 127.0.0.1, answering in Zendesk's own response shapes.

It checks Basic authentication with an API token (``{email}/token:{api_token}``) and answers 401 otherwise. Tests seed
tickets with ``add_ticket(...)`` (or straight into ``tickets``), queue error answers with ``fail_next(...)``, and read
back ``requests`` (what came in) and ``comments`` (what was added to each ticket).

Served: ``GET /api/v2/tickets/{id}.json`` (with ``?include=users`` sideloading), ``PUT /api/v2/tickets/{id}.json``
(comment, status, tags, additional_tags, remove_tags, subject, priority; answered with the ticket and its audit) and
``GET /api/v2/tickets/{id}/comments.json``.

Usage::

    zendesk = FakeZendesk()
    ticket = zendesk.add_ticket(subject="Refund", description="I was charged twice.", requester_email="ann@example.com")
    with override_settings(NEENA_ZENDESK_BASE_URL=zendesk.base_url):
        ...
    assert zendesk.comments[ticket["id"]][-1]["body"] == "..."
    zendesk.stop()
"""

import base64
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

# The account the fake accepts unless told otherwise: what a test stores in the Zendesk credential.
AGENT_EMAIL = "agent@example.com"
API_TOKEN = "zendesk-api-token"
SUBDOMAIN = "neena"

STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
TICKET_PATH = re.compile(r"^/api/v2/tickets/(?P<id>\d+)\.json$")
COMMENTS_PATH = re.compile(r"^/api/v2/tickets/(?P<id>\d+)/comments\.json$")


@dataclass
class ReceivedRequest:
    """One request as the fake received it. ``headers`` is case-insensitive; ``body`` is the decoded JSON body (None
    without one, the raw text when it is not JSON); ``query`` holds the query string's parameters."""

    method: str
    path: str
    query: dict[str, str]
    headers: httpx.Headers
    body: Any


@dataclass
class Failure:
    """A queued error answer, given to the next request whatever it asks."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class FakeZendesk:
    """A running fake Zendesk; ``base_url`` (ending in ``/api/v2``) goes into NEENA_ZENDESK_BASE_URL."""

    def __init__(self, *, email: str = AGENT_EMAIL, api_token: str = API_TOKEN, subdomain: str = SUBDOMAIN) -> None:
        self.email = email
        self.api_token = api_token
        self.subdomain = subdomain
        self.tickets: dict[int, dict[str, Any]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.audits: dict[int, list[dict[str, Any]]] = {}
        self.requests: list[ReceivedRequest] = []
        self.failures: deque[Failure] = deque()
        self._lock = threading.Lock()
        self._next_id = {"ticket": 1, "user": 360_000_000_001, "comment": 7_000_000_001, "audit": 9_000_000_001}
        self.agent = self.add_user(email=email, name="Neena Agent", role="agent")

        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, headers, payload = fake._answer(
                    self.command, self.path, httpx.Headers(self.headers.items()), raw
                )
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = _handle  # noqa: N815 - the names http.server dispatches to

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v2"

    # --- Seeding and controlling -------------------------------------------------------------------------------------

    def _new_id(self, kind: str) -> int:
        value = self._next_id[kind]
        self._next_id[kind] = value + 1
        return value

    def add_user(self, *, email: str | None, name: str = "", role: str = "end-user") -> dict[str, Any]:
        """A user (end-user or agent) as Zendesk describes one; ``email`` None is a user known only by phone."""
        user_id = self._new_id("user")
        user = {
            "id": user_id,
            "url": f"https://{self.subdomain}.zendesk.com/api/v2/users/{user_id}.json",
            "name": name or (email or "").split("@")[0] or "Caller",
            "email": email,
            "role": role,
            "active": True,
            "verified": True,
            "time_zone": "UTC",
            "locale": "en-US",
            "created_at": _now(),
            "updated_at": _now(),
        }
        self.users[user_id] = user
        return user

    def add_ticket(
        self,
        ticket_id: int | None = None,
        *,
        subject: str = "Help needed",
        description: str = "Something is wrong.",
        requester_email: str | None = "customer@example.com",
        requester_name: str = "",
        status: str = "new",
        tags: list[str] | tuple[str, ...] = (),
        priority: str | None = None,
    ) -> dict[str, Any]:
        """Seeds a ticket, its requester and its first (public) comment; returns the ticket as the API shows it."""
        existing = next(
            (user for user in self.users.values() if requester_email and user["email"] == requester_email), None
        )
        requester = existing or self.add_user(email=requester_email, name=requester_name)
        if ticket_id is None:
            ticket_id = max([self._next_id["ticket"] - 1, *self.tickets]) + 1
        self._next_id["ticket"] = max(self._next_id["ticket"], ticket_id + 1)
        ticket = {
            "id": ticket_id,
            "url": f"https://{self.subdomain}.zendesk.com/api/v2/tickets/{ticket_id}.json",
            "external_id": None,
            "type": None,
            "subject": subject,
            "raw_subject": subject,
            "description": description,
            "priority": priority,
            "status": status,
            "recipient": None,
            "requester_id": requester["id"],
            "submitter_id": requester["id"],
            "assignee_id": None,
            "organization_id": None,
            "group_id": None,
            "collaborator_ids": [],
            "follower_ids": [],
            "email_cc_ids": [],
            "has_incidents": False,
            "is_public": True,
            "due_at": None,
            "tags": list(tags),
            "custom_fields": [],
            "via": {"channel": "web", "source": {"from": {}, "to": {}, "rel": None}},
            "created_at": _now(),
            "updated_at": _now(),
        }
        self.tickets[ticket_id] = ticket
        self.comments[ticket_id] = [self._comment(description, public=True, author_id=requester["id"], audit_id=None)]
        self.audits[ticket_id] = []
        return ticket

    def fail_next(self, status: int, headers: dict[str, str] | None = None, body: Any = None) -> None:
        """Queues an error answer for the next request, e.g. ``fail_next(429, {"Retry-After": "7"})``."""
        self.failures.append(Failure(status, headers or {}, body))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "FakeZendesk":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- Answering ---------------------------------------------------------------------------------------------------

    def _answer(self, method: str, target: str, headers: httpx.Headers, raw: bytes) -> tuple[int, dict[str, str], Any]:
        split = urlsplit(target)
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        with self._lock:
            self.requests.append(ReceivedRequest(method, split.path, dict(parse_qsl(split.query)), headers, body))
            if self.failures:
                failure = self.failures.popleft()
                default = (
                    {
                        "error": "APIRateLimitExceeded",
                        "description": "Number of allowed API requests per minute exceeded",
                    }
                    if failure.status == 429
                    else {"error": "ServerError", "description": "Something went wrong on Zendesk's side"}
                )
                return failure.status, failure.headers, failure.body if failure.body is not None else default
            if not self._authenticated(headers):
                return 401, {"WWW-Authenticate": 'Basic realm="Web Password"'}, {"error": "Couldn't authenticate you"}
            return self._route(method, split.path, dict(parse_qsl(split.query)), body)

    def _authenticated(self, headers: httpx.Headers) -> bool:
        expected = base64.b64encode(f"{self.email}/token:{self.api_token}".encode()).decode()
        return headers.get("Authorization", "") == f"Basic {expected}"

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
        ticket_match, comments_match = TICKET_PATH.match(path), COMMENTS_PATH.match(path)
        match = ticket_match or comments_match
        if match is None:
            return 404, {}, {"error": "InvalidEndpoint", "description": "Not found"}
        ticket = self.tickets.get(int(match.group("id")))
        if ticket is None:
            return 404, {}, {"error": "RecordNotFound", "description": "Not found"}
        if comments_match and method == "GET":
            comments = self.comments[ticket["id"]]
            return 200, {}, {"comments": comments, "next_page": None, "previous_page": None, "count": len(comments)}
        if ticket_match and method == "GET":
            answer: dict[str, Any] = {"ticket": ticket}
            if "users" in query.get("include", "").split(","):
                ids = [ticket["requester_id"], ticket["submitter_id"], ticket["assignee_id"]]
                answer["users"] = [self.users[user_id] for user_id in dict.fromkeys(ids) if user_id in self.users]
            return 200, {}, answer
        if ticket_match and method == "PUT":
            return self._update(ticket, body)
        return 404, {}, {"error": "InvalidEndpoint", "description": "Not found"}

    def _comment(self, body: str, *, public: bool, author_id: int, audit_id: int | None) -> dict[str, Any]:
        return {
            "id": self._new_id("comment"),
            "type": "Comment",
            "author_id": author_id,
            "body": body,
            "html_body": f'<div class="zd-comment" dir="auto"><p dir="auto">{body}</p></div>',
            "plain_body": body,
            "public": public,
            "attachments": [],
            "audit_id": audit_id,
            "via": {"channel": "api" if audit_id else "web", "source": {"from": {}, "to": {}, "rel": None}},
            "created_at": _now(),
        }

    def _invalid(self, field_name: str, description: str) -> tuple[int, dict[str, str], Any]:
        details = {field_name: [{"description": description, "error": "InvalidValue"}]}
        return 422, {}, {"error": "RecordInvalid", "description": "Record validation errors", "details": details}

    def _update(self, ticket: dict[str, Any], body: Any) -> tuple[int, dict[str, str], Any]:
        """Applies a ticket update the way Zendesk does and answers with the ticket and the audit recording it."""
        changes = body.get("ticket") if isinstance(body, dict) else None
        if not isinstance(changes, dict):
            return 400, {}, {"error": "InvalidValue", "description": "ticket parameter is missing or not an object"}
        if ticket["status"] == "closed":
            return self._invalid("status", "Status: closed prevents ticket update")
        status = changes.get("status")
        if status is not None and status not in STATUSES:
            return self._invalid("status", f"Status: {status} is not valid")
        comment = changes.get("comment")
        if comment is not None and not (
            isinstance(comment, dict) and (comment.get("body") or comment.get("html_body"))
        ):
            return self._invalid("comment", "Comment: body is empty")

        audit_id = self._new_id("audit")
        events: list[dict[str, Any]] = []
        if comment is not None:
            added = self._comment(
                comment.get("body") or comment.get("html_body"),
                public=bool(comment.get("public", True)),
                author_id=self.agent["id"],
                audit_id=audit_id,
            )
            self.comments[ticket["id"]].append(added)
            events.append({key: value for key, value in added.items() if key not in ("via", "created_at")})
            if status is None and ticket["status"] == "new":
                status = "open"  # an agent's comment opens a new ticket

        def change(name: str, value: Any) -> None:
            if ticket[name] != value:
                event_id = self._new_id("comment")
                events.append(
                    {
                        "id": event_id,
                        "type": "Change",
                        "field_name": name,
                        "value": value,
                        "previous_value": ticket[name],
                    }
                )
                ticket[name] = value

        if status is not None:
            change("status", status)
        tags = list(ticket["tags"])
        if "tags" in changes:
            tags = list(dict.fromkeys(str(tag) for tag in changes["tags"] or []))
        tags += [str(tag) for tag in changes.get("additional_tags") or [] if str(tag) not in tags]
        tags = [tag for tag in tags if tag not in {str(tag) for tag in changes.get("remove_tags") or []}]
        change("tags", tags)
        for name in ("subject", "priority"):
            if name in changes:
                change(name, changes[name])
        ticket["updated_at"] = _now()
        audit = {
            "id": audit_id,
            "ticket_id": ticket["id"],
            "created_at": ticket["updated_at"],
            "author_id": self.agent["id"],
            "metadata": {"system": {"client": "Neena", "ip_address": "127.0.0.1"}, "custom": {}},
            "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
            "events": events,
        }
        self.audits[ticket["id"]].append(audit)
        return 200, {}, {"ticket": ticket, "audit": audit}
