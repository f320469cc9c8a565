"""A fake Gmail API v1 on 127.0.0.1, speaking the real protocol for the calls the connector makes.

It keeps a mailbox: ``add_message`` files a received message (built with the email package, so its payload is Gmail's
real MIME tree with base64url part data), and every ``users.messages.send`` is parsed and filed too, so it can be read
back. It checks the bearer token, the JSON content type and the ``raw`` message, answers in Gmail's shapes (message
resources, list pages, Google's error object) and records every request. ``fail(...)`` queues error answers (429
with Retry-After, a rate-limit 403, 401, 404, 5xx), optionally for one method and path only.
"""

import base64
import html
import itertools
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime, getaddresses, parseaddr
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.server import serve

PREFIX = "/gmail/v1/users/me"
ACCESS_TOKEN = "gmail-access-token"
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
DEFAULT_REASONS = {
    400: "invalidArgument",
    401: "authError",
    403: "forbidden",
    404: "notFound",
    429: "rateLimitExceeded",
}


@dataclass
class ReceivedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: Any


@dataclass
class QueuedError:
    status: int
    payload: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    when: str = ""  # "METHOD /path" the error is for; empty: the next request
    delay: float = 0.0


def google_error(status: int, message: str, reason: str = "") -> dict[str, Any]:
    """Google's error object, as every Google API answers a failure."""
    return {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason or DEFAULT_REASONS.get(status, "")}],
            "status": STATUS_NAMES.get(status, "UNKNOWN"),
        }
    }


def _part_payload(part: Any, part_id: str) -> dict[str, Any]:
    """One MIME part as Gmail's ``MessagePart``: its headers, and its data base64url-encoded or its children."""
    headers = [{"name": name, "value": str(value)} for name, value in part.raw_items()]
    resource: dict[str, Any] = {
        "partId": part_id,
        "mimeType": part.get_content_type(),
        "filename": part.get_filename() or "",
        "headers": headers,
    }
    if part.is_multipart():
        prefix = f"{part_id}." if part_id else ""
        resource["body"] = {"size": 0}
        resource["parts"] = [_part_payload(child, f"{prefix}{index}") for index, child in enumerate(part.iter_parts())]
        return resource
    data = part.get_payload(decode=True) or b""
    if resource["filename"]:
        resource["body"] = {"attachmentId": f"ANGjdJ{len(data)}", "size": len(data)}
    else:
        resource["body"] = {"size": len(data), "data": base64.urlsafe_b64encode(data).decode()}
    return resource


def _first_text(message: Any) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain" and not part.get_filename():
            return str(part.get_content())
    return ""


class FakeGmail:
    """``base_url`` goes into NEENA_GMAIL_BASE_URL; ``messages`` holds the mailbox (full resources, by id)."""

    def __init__(self, access_token: str = ACCESS_TOKEN, address: str = "me@example.com") -> None:
        self.access_token = access_token
        self.address = address
        self.messages: dict[str, dict[str, Any]] = {}
        self.raw_messages: dict[str, bytes] = {}
        self.errors: deque[QueuedError] = deque()
        self.requests: list[ReceivedRequest] = []
        # Gmail may answer a list call with fewer messages than maxResults and a nextPageToken; this caps each page.
        self.page_size = 500
        self._ids = itertools.count(0x18C0FFEE0001)
        self._lock = threading.Lock()
        self.server = serve(self._handle)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/gmail/v1"

    # --- what tests set up and read back ---------------------------------------------------------------------------

    def add_message(
        self,
        *,
        sender: str,
        subject: str,
        body: str,
        to: str = "",
        html_body: str = "",
        attachment: bytes = b"",
        thread_id: str = "",
        headers: dict[str, str] | None = None,
        plain: bool = True,
    ) -> dict[str, Any]:
        """Files a received message (text, optionally with an HTML alternative and an attachment); returns its
        full resource. ``plain=False`` leaves the text/plain part out (an HTML-only mail)."""
        message = EmailMessage()
        message["From"] = sender
        message["To"] = to or self.address
        message["Subject"] = subject
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = f"<{next(self._ids):x}@mail.example.com>"
        for name, value in (headers or {}).items():
            del message[name]
            message[name] = value
        if plain:
            message.set_content(body)
            if html_body:
                message.add_alternative(html_body, subtype="html")
        else:
            message.set_content(html_body, subtype="html")
        if attachment:
            message.add_attachment(attachment, maintype="application", subtype="octet-stream", filename="a.bin")
        return self._file(message.as_bytes(), thread_id=thread_id, labels=["INBOX", "UNREAD"])

    def sent(self) -> list[Any]:
        """Every message sent through users.messages.send, as filed (with the From Gmail adds), parsed."""
        return [
            message_from_bytes(self.raw_messages[message_id], policy=default_policy)
            for message_id, resource in self.messages.items()
            if "SENT" in resource["labelIds"]
        ]

    def fail(
        self,
        status: int,
        message: str = "",
        *,
        reason: str = "",
        headers: dict[str, str] | None = None,
        when: str = "",
        delay: float = 0.0,
    ) -> None:
        """Queues an error answer in Google's shape, for the next request or the next one matching ``when``
        (``"POST /gmail/v1/users/me/messages/send"``)."""
        text = message or {429: "Too many concurrent requests for user.", 500: "Backend Error"}.get(status, "Error")
        self.errors.append(QueuedError(status, google_error(status, text, reason), dict(headers or {}), when, delay))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- the protocol ------------------------------------------------------------------------------------------------

    def _file(self, raw: bytes, *, thread_id: str, labels: list[str]) -> dict[str, Any]:
        with self._lock:
            message_id = f"{next(self._ids):x}"
        parsed = message_from_bytes(raw, policy=default_policy)
        snippet = re.sub(r"\s+", " ", _first_text(parsed)).strip()[:100]
        resource = {
            "id": message_id,
            "threadId": thread_id or message_id,
            "labelIds": labels,
            "snippet": html.escape(snippet),  # Gmail escapes quotes and ampersands in snippets
            "sizeEstimate": len(raw),
            "historyId": str(int(message_id, 16) % 100000),
            "internalDate": str(int(time.time() * 1000)),
            "payload": _part_payload(parsed, ""),
        }
        self.messages[message_id] = resource
        self.raw_messages[message_id] = raw
        return resource

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(handler.path)
        query = parse_qs(url.query)
        headers = {name.lower(): value for name, value in handler.headers.items()}
        length = int(headers.get("content-length") or 0)
        data = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(data) if data else None
        except ValueError:
            body = data.decode(errors="replace")
        self.requests.append(ReceivedRequest(method, url.path, query, headers, body))

        def send(status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
            encoded = json.dumps(payload).encode()
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json; charset=UTF-8")
            handler.send_header("Content-Length", str(len(encoded)))
            for name, value in (extra or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(encoded)

        if headers.get("authorization") != f"Bearer {self.access_token}":
            message = (
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
                "other valid authentication credential."
            )
            challenge = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
            send(401, google_error(401, message), {"WWW-Authenticate": challenge})
            return
        queued = next((e for e in self.errors if not e.when or e.when == f"{method} {url.path}"), None)
        if queued is not None:
            self.errors.remove(queued)
            time.sleep(queued.delay)
            send(queued.status, queued.payload, queued.headers)
            return
        if method == "POST" and not headers.get("content-type", "").startswith("application/json"):
            send(400, google_error(400, "Invalid JSON payload received."))
            return
        status, payload = self._route(method, url.path, query, body)
        send(status, payload)

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if method == "POST" and path == f"{PREFIX}/messages/send":
            return self._send(body)
        if method == "GET" and path == f"{PREFIX}/messages":
            return self._list(query)
        match = re.fullmatch(rf"{PREFIX}/messages/([^/]+)", path)
        if method == "GET" and match:
            return self._get(match.group(1), query)
        return 404, google_error(404, "Not Found")

    def _send(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not body.get("raw"):
            return 400, google_error(400, "'raw' RFC822 payload message string or upload via /upload/* URL required")
        encoded = str(body["raw"])
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except ValueError:
            return 400, google_error(400, "Invalid value for ByteString")
        parsed = message_from_bytes(raw, policy=default_policy)
        recipients = [address for _, address in getaddresses(parsed.get_all("To", []) + parsed.get_all("Cc", []))]
        if not any("@" in address for address in recipients):
            return 400, google_error(400, "Recipient address required")
        thread_id = str(body.get("threadId") or "")
        if thread_id and not any(m["threadId"] == thread_id for m in self.messages.values()):
            return 404, google_error(404, "Requested entity was not found.")
        sent = self._file(f"From: {self.address}\r\n".encode() + raw, thread_id=thread_id, labels=["SENT"])
        return 200, {"id": sent["id"], "threadId": sent["threadId"], "labelIds": ["SENT"]}

    def _get(self, message_id: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        resource = self.messages.get(message_id)
        if resource is None:
            return 404, google_error(404, "Requested entity was not found.")
        form = (query.get("format") or ["full"])[0]
        if form not in ("full", "metadata", "minimal", "raw"):
            return 400, google_error(400, f"Invalid value at 'format' ({form})")
        found = {key: value for key, value in resource.items() if key != "payload"}
        if form == "full":
            found["payload"] = resource["payload"]
        elif form == "metadata":
            wanted = {name.lower() for name in query.get("metadataHeaders", [])}
            headers = [h for h in resource["payload"]["headers"] if not wanted or h["name"].lower() in wanted]
            found["payload"] = {"partId": "", "mimeType": resource["payload"]["mimeType"], "headers": headers}
        elif form == "raw":
            found["raw"] = base64.urlsafe_b64encode(self.raw_messages[message_id]).decode()
        return 200, found

    def _matches(self, message_id: str, query: str) -> bool:
        parsed = message_from_bytes(self.raw_messages[message_id], policy=default_policy)
        sender = parseaddr(str(parsed.get("From", "")))[1].lower()
        subject = str(parsed.get("Subject", "")).lower()
        text = f"{sender} {subject} {_first_text(parsed).lower()}"
        for term in re.findall(r'\w+:"[^"]*"|\w+:\S+|"[^"]*"|\S+', query):
            key, _, value = term.partition(":") if re.match(r"^\w+:", term) else ("", "", term)
            value = value.strip('"').lower()
            if key == "from" and value not in sender:
                return False
            if key == "subject" and value not in subject:
                return False
            if key == "is" and value == "unread" and "UNREAD" not in self.messages[message_id]["labelIds"]:
                return False
            if not key and value not in text:
                return False
        return True

    def _list(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        try:
            limit = int((query.get("maxResults") or ["100"])[0])
            start = int((query.get("pageToken") or ["0"])[0])
        except ValueError:
            return 400, google_error(400, "Invalid value at 'max_results'")
        if not 1 <= limit <= 500:
            return 400, google_error(400, "Invalid value at 'max_results'")
        q = (query.get("q") or [""])[0]
        found = [m for m in reversed(list(self.messages)) if self._matches(m, q)]  # newest first
        limit = min(limit, self.page_size)
        page = found[start : start + limit]
        answer: dict[str, Any] = {"resultSizeEstimate": len(found)}
        if page:
            answer["messages"] = [{"id": m, "threadId": self.messages[m]["threadId"]} for m in page]
        if start + limit < len(found):
            answer["nextPageToken"] = str(start + limit)
        return 200, answer
