"""A fake Jira Cloud REST API v3 on 127.0.0.1, speaking the real protocol for the calls the connector makes.

It keeps projects and their issues in a three-status workflow (To Do, In Progress, Done, with transitions named
Reopen, Start Progress and Close), checks basic auth (the account's email and API token), JSON bodies and that texts
are Atlassian Document Format, answers in Jira's shapes (created-issue and comment objects, the transitions list, 204
for a transition, ``{"errorMessages": [...], "errors": {...}}``) and records every request. ``fail(...)`` queues error
answers (429 with Retry-After, 401, 404, 5xx), optionally for one method and path only.
"""

import base64
import itertools
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.server import serve

EMAIL = "bot@example.com"
API_TOKEN = "jira-api-token"
STATUSES = {
    "To Do": {"id": "10000", "category": ("new", "To Do", "blue-gray")},
    "In Progress": {"id": "3", "category": ("indeterminate", "In Progress", "yellow")},
    "Done": {"id": "10001", "category": ("done", "Done", "green")},
}
# (id, name, target status): the workflow's transitions, each open from every other status.
TRANSITIONS = (("11", "Reopen", "To Do"), ("21", "Start Progress", "In Progress"), ("31", "Close", "Done"))
ISSUE_TYPES = ("Task", "Bug", "Story", "Epic")


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
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)
    when: str = ""  # "METHOD /path" the error is for; empty: the next request
    delay: float = 0.0


def jira_error(messages: list[str] | None = None, errors: dict[str, str] | None = None) -> dict[str, Any]:
    """Jira's error collection."""
    return {"errorMessages": list(messages or []), "errors": dict(errors or {})}


def is_document(value: Any) -> bool:
    """An Atlassian Document: a versioned ``doc`` whose text nodes are never empty."""

    def valid(node: Any) -> bool:
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            return False
        if node["type"] == "text" and not (isinstance(node.get("text"), str) and node["text"]):
            return False
        return all(valid(child) for child in node.get("content", []))

    return isinstance(value, dict) and value.get("type") == "doc" and value.get("version") == 1 and valid(value)


def document_text(document: dict[str, Any]) -> str:
    """The plain text of a document (paragraphs on blank lines, hard breaks as line breaks), for assertions."""
    paragraphs = []
    for paragraph in document.get("content", []):
        pieces = [
            "\n" if node["type"] == "hardBreak" else node.get("text", "") for node in paragraph.get("content", [])
        ]
        paragraphs.append("".join(pieces))
    return "\n\n".join(paragraphs)


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class FakeJira:
    """``base_url`` goes into NEENA_JIRA_BASE_URL; ``issues`` holds the issues by key, ``comments`` by issue key."""

    def __init__(self, email: str = EMAIL, api_token: str = API_TOKEN) -> None:
        self.authorization = "Basic " + base64.b64encode(f"{email}:{api_token}".encode()).decode()
        self.projects: dict[str, str] = {}
        self.issues: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, list[dict[str, Any]]] = {}
        self.errors: deque[QueuedError] = deque()
        self.requests: list[ReceivedRequest] = []
        self._ids = itertools.count(10001)
        self._lock = threading.Lock()
        self.server = serve(self._handle)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    # --- what tests set up and read back ---------------------------------------------------------------------------

    def add_project(self, key: str) -> None:
        self.projects[key] = str(next(self._ids))

    def add_issue(self, project: str, summary: str, status: str = "To Do") -> str:
        issue = self._create(project, {"summary": summary, "issuetype": {"name": "Task"}})
        issue["fields"]["status"] = self._status(status)
        return str(issue["key"])

    def status_of(self, key: str) -> str:
        return str(self.issues[key]["fields"]["status"]["name"])

    def fail(
        self,
        status: int,
        *messages: str,
        errors: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        when: str = "",
        delay: float = 0.0,
    ) -> None:
        """Queues an error answer for the next request, or the next one matching ``when`` (``"POST /rest/..."``)."""
        self.errors.append(QueuedError(status, jira_error(list(messages), errors), dict(headers or {}), when, delay))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- the protocol ------------------------------------------------------------------------------------------------

    def _status(self, name: str) -> dict[str, Any]:
        status = STATUSES[name]
        key, category, color = status["category"]
        return {
            "self": f"{self.base_url}/rest/api/3/status/{status['id']}",
            "name": name,
            "id": status["id"],
            "statusCategory": {"key": key, "name": category, "colorName": color},
        }

    def _create(self, project: str, fields: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            number = 1 + sum(1 for key in self.issues if key.startswith(f"{project}-"))
            issue_id = str(next(self._ids))
        key = f"{project}-{number}"
        issue = {
            "id": issue_id,
            "key": key,
            "self": f"{self.base_url}/rest/api/3/issue/{issue_id}",
            "fields": {**fields, "project": {"key": project}, "status": self._status("To Do"), "created": _timestamp()},
        }
        self.issues[key] = issue
        self.comments[key] = []
        return issue

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(handler.path)
        headers = {name.lower(): value for name, value in handler.headers.items()}
        length = int(headers.get("content-length") or 0)
        data = handler.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(data) if data else None
            parsed = True
        except ValueError:
            body, parsed = data.decode(errors="replace"), False
        self.requests.append(ReceivedRequest(method, url.path, parse_qs(url.query), headers, body))

        def send(status: int, payload: Any = None, extra: dict[str, str] | None = None) -> None:
            encoded = (
                b"" if payload is None else (payload if isinstance(payload, bytes) else json.dumps(payload).encode())
            )
            handler.send_response(status)
            if payload is not None:
                kind = "text/plain" if isinstance(payload, bytes) else "application/json"
                handler.send_header("Content-Type", f"{kind};charset=UTF-8")
            handler.send_header("Content-Length", str(len(encoded)))
            for name, value in (extra or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(encoded)

        if headers.get("authorization") != self.authorization:
            send(401, b"Client must be authenticated to access this resource.", {"WWW-Authenticate": "Basic"})
            return
        queued = next((e for e in self.errors if not e.when or e.when == f"{method} {url.path}"), None)
        if queued is not None:
            self.errors.remove(queued)
            time.sleep(queued.delay)
            send(queued.status, queued.payload, queued.headers)
            return
        if method == "POST" and not headers.get("content-type", "").startswith("application/json"):
            send(415)
            return
        if method == "POST" and not parsed:
            send(400, jira_error(["Unexpected character in the JSON body."]))
            return
        status, payload = self._route(method, unquote(url.path), parse_qs(url.query), body)
        send(status, payload)

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if path == "/rest/api/3/issue" and method == "POST":
            return self._create_issue(body)
        match = re.fullmatch(r"/rest/api/3/issue/([^/]+)(?:/(comment|transitions))?", path)
        if not match:
            return 404, jira_error(["Not found."])
        issue = self.issues.get(match.group(1).upper()) or next(
            (issue for issue in self.issues.values() if issue["id"] == match.group(1)), None
        )
        if issue is None:
            return 404, jira_error(["Issue does not exist or you do not have permission to see it."])
        action = match.group(2)
        if action is None and method == "GET":
            wanted = (query.get("fields") or [""])[0].split(",")
            fields = {name: value for name, value in issue["fields"].items() if name in wanted or wanted == [""]}
            return 200, {"id": issue["id"], "key": issue["key"], "self": issue["self"], "fields": fields}
        if action == "comment" and method == "POST":
            return self._comment(issue, body)
        if action == "transitions" and method == "GET":
            return 200, {"expand": "transitions", "transitions": self._transitions(issue)}
        if action == "transitions" and method == "POST":
            return self._transition(issue, body)
        return 405, jira_error([f"Method {method} not allowed."])

    def _create_issue(self, body: Any) -> tuple[int, Any]:
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return 400, jira_error(["Field 'fields' is required."])
        errors: dict[str, str] = {}
        project = (fields.get("project") or {}).get("key")
        if project not in self.projects:
            errors["project"] = "valid project is required"
        if not isinstance(fields.get("summary"), str) or not fields["summary"].strip():
            errors["summary"] = "You must specify a summary of the issue."
        if (fields.get("issuetype") or {}).get("name") not in ISSUE_TYPES:
            errors["issuetype"] = "Specify a valid issue type"
        if "description" in fields and not is_document(fields["description"]):
            errors["description"] = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
        if errors:
            return 400, jira_error(errors=errors)
        issue = self._create(str(project), {k: v for k, v in fields.items() if k != "project"})
        return 201, {"id": issue["id"], "key": issue["key"], "self": issue["self"]}

    def _comment(self, issue: dict[str, Any], body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not is_document(body.get("body")):
            return 400, jira_error(errors={"comment": "Comment body is not valid!"})
        comment_id = str(next(self._ids))
        comment = {
            "self": f"{issue['self']}/comment/{comment_id}",
            "id": comment_id,
            "author": {"accountId": "5b10a2844c20165700ede21g", "displayName": "Neena Bot", "active": True},
            "body": body["body"],
            "created": _timestamp(),
            "updated": _timestamp(),
            "jsdPublic": True,
        }
        self.comments[issue["key"]].append(comment)
        return 201, comment

    def _transitions(self, issue: dict[str, Any]) -> list[dict[str, Any]]:
        current = issue["fields"]["status"]["name"]
        return [
            {
                "id": transition_id,
                "name": name,
                "to": self._status(target),
                "hasScreen": False,
                "isGlobal": True,
                "isInitial": False,
                "isAvailable": True,
                "isConditional": False,
                "isLooped": False,
            }
            for transition_id, name, target in TRANSITIONS
            if target != current
        ]

    def _transition(self, issue: dict[str, Any], body: Any) -> tuple[int, Any]:
        wanted = ((body or {}).get("transition") or {}).get("id") if isinstance(body, dict) else None
        chosen = next((t for t in self._transitions(issue) if t["id"] == wanted), None)
        if chosen is None:
            return 400, jira_error([f"Transition id '{wanted}' is not valid for this issue."])
        issue["fields"]["status"] = chosen["to"]
        return 204, None
