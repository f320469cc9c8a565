"""A fake GitHub REST API on 127.0.0.1, speaking the real protocol for the issue calls the connector makes.

It keeps repositories with their issues, comments and labels, checks the token (``Authorization: Bearer``, or the
older ``token`` scheme GitHub still takes), the API version header and JSON bodies, answers in GitHub's shapes (issue,
comment and label objects; ``{"message", "documentation_url", "status"}`` errors, 422 with ``errors``) with the
``x-ratelimit-*`` headers on every answer, and records every request. ``fail(...)`` and ``rate_limit(...)`` queue
error answers (the primary and secondary rate limits, 401, 404, 5xx), optionally for one method and path only.
"""

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
from urllib.parse import parse_qs, urlsplit

from tests.fakes.server import serve

TOKEN = "github-token"
API_VERSIONS = {"2022-11-28"}
RATE_LIMIT = 5000
DOCS = "https://docs.github.com/rest"


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


def github_error(status: int, message: str, errors: list[Any] | None = None) -> dict[str, Any]:
    """GitHub's error object."""
    payload: dict[str, Any] = {"message": message, "documentation_url": DOCS, "status": str(status)}
    if errors is not None:
        payload["errors"] = errors
    return payload


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeGitHub:
    """``base_url`` goes into NEENA_GITHUB_BASE_URL; ``issues[(repo, number)]``, ``comments`` and ``labels[repo]``
    hold what the API has been asked to create."""

    def __init__(self, token: str = TOKEN, login: str = "neena-bot") -> None:
        self.token = token
        self.user = {"login": login, "id": 583231, "node_id": "MDQ6VXNlcjU4MzIzMQ==", "type": "User"}
        self.repositories: set[str] = set()
        self.issues: dict[tuple[str, int], dict[str, Any]] = {}
        self.comments: list[dict[str, Any]] = []
        self.labels: dict[str, dict[str, dict[str, Any]]] = {}
        self.errors: deque[QueuedError] = deque()
        self.requests: list[ReceivedRequest] = []
        self.remaining = RATE_LIMIT
        self._ids = itertools.count(1_000_001)
        self._lock = threading.Lock()
        self.server = serve(self._handle)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    # --- what tests set up and read back ---------------------------------------------------------------------------

    def add_repository(self, full_name: str, labels: tuple[str, ...] = ("bug", "enhancement")) -> None:
        self.repositories.add(full_name)
        self.labels.setdefault(full_name, {})
        for name in labels:
            self._label(full_name, name)

    def add_issue(self, full_name: str, title: str, labels: tuple[str, ...] = ()) -> dict[str, Any]:
        return self._create_issue(full_name, {"title": title, "labels": list(labels)})

    def fail(
        self,
        status: int,
        message: str = "",
        *,
        headers: dict[str, str] | None = None,
        errors: list[Any] | None = None,
        when: str = "",
        delay: float = 0.0,
    ) -> None:
        """Queues an error answer for the next request, or the next one matching ``when`` (``"POST /repos/..."``)."""
        text = message or {401: "Bad credentials", 404: "Not Found", 500: "Server Error"}.get(status, "Error")
        self.errors.append(QueuedError(status, github_error(status, text, errors), dict(headers or {}), when, delay))

    def rate_limit(self, *, status: int = 403, reset_in: int = 1800, retry_after: int | None = None) -> None:
        """Queues the primary rate limit's answer: ``x-ratelimit-remaining: 0`` and the reset time."""
        headers = {
            "x-ratelimit-limit": str(RATE_LIMIT),
            "x-ratelimit-remaining": "0",
            "x-ratelimit-used": str(RATE_LIMIT),
            "x-ratelimit-reset": str(int(time.time()) + reset_in),
            "x-ratelimit-resource": "core",
        }
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        message = "API rate limit exceeded for user ID 583231."
        self.errors.append(QueuedError(status, github_error(status, message), headers))

    def secondary_rate_limit(self, *, retry_after: int | None = 60) -> None:
        """Queues a secondary rate limit's 403: remaining requests left, but too many too fast."""
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
        self.errors.append(QueuedError(403, github_error(403, message), headers))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- the protocol ------------------------------------------------------------------------------------------------

    def _label(self, repo: str, name: str) -> dict[str, Any]:
        known = self.labels.setdefault(repo, {})
        if name.lower() not in known:
            label_id = next(self._ids)
            known[name.lower()] = {
                "id": label_id,
                "node_id": f"LA_{label_id}",
                "url": f"{self.base_url}/repos/{repo}/labels/{name}",
                "name": name,
                "color": "ededed",
                "default": False,
                "description": None,
            }
        return known[name.lower()]

    def _create_issue(self, repo: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            number = 1 + max((n for r, n in self.issues if r == repo), default=0)
            issue_id = next(self._ids)
        api = f"{self.base_url}/repos/{repo}/issues/{number}"
        issue = {
            "id": issue_id,
            "node_id": f"I_{issue_id}",
            "url": api,
            "repository_url": f"{self.base_url}/repos/{repo}",
            "labels_url": f"{api}/labels{{/name}}",
            "comments_url": f"{api}/comments",
            "events_url": f"{api}/events",
            "html_url": f"https://github.com/{repo}/issues/{number}",
            "number": number,
            "state": "open",
            "state_reason": None,
            "title": body["title"],
            "body": body.get("body"),
            "user": self.user,
            "labels": [self._label(repo, str(name)) for name in body.get("labels") or []],
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "locked": False,
            "comments": 0,
            "created_at": _timestamp(),
            "updated_at": _timestamp(),
            "closed_at": None,
            "author_association": "OWNER",
        }
        self.issues[(repo, number)] = issue
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
        self.remaining = max(0, self.remaining - 1)
        rate = {
            "x-ratelimit-limit": str(RATE_LIMIT),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-used": str(RATE_LIMIT - self.remaining),
            "x-ratelimit-reset": str(int(time.time()) + 3600),
            "x-ratelimit-resource": "core",
            "x-github-api-version-selected": "2022-11-28",
        }

        def send(status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
            encoded = json.dumps(payload).encode()
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json; charset=utf-8")
            handler.send_header("Content-Length", str(len(encoded)))
            for name, value in {**rate, **(extra or {})}.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(encoded)

        authorization = headers.get("authorization", "")
        if authorization not in (f"Bearer {self.token}", f"token {self.token}"):
            send(401, github_error(401, "Bad credentials" if authorization else "Requires authentication"))
            return
        version = headers.get("x-github-api-version")
        if version is not None and version not in API_VERSIONS:
            send(400, github_error(400, f"Unsupported 'X-GitHub-Api-Version' header. Got '{version}'."))
            return
        queued = next((e for e in self.errors if not e.when or e.when == f"{method} {url.path}"), None)
        if queued is not None:
            self.errors.remove(queued)
            time.sleep(queued.delay)
            send(queued.status, queued.payload, queued.headers)
            return
        if method == "POST" and not parsed:
            send(400, github_error(400, "Problems parsing JSON"))
            return
        status, payload = self._route(method, url.path, body)
        send(status, payload)

    def _route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        match = re.fullmatch(r"/repos/([^/]+/[^/]+)/issues(?:/(\d+)(?:/(comments|labels))?)?", path)
        if not match or match.group(1) not in self.repositories:
            return 404, github_error(404, "Not Found")
        repo, number, collection = match.group(1), match.group(2), match.group(3)
        if number is None:
            return self._issues(method, repo, body)
        issue = self.issues.get((repo, int(number)))
        if issue is None:
            return 404, github_error(404, "Not Found")
        if collection is None and method == "GET":
            return 200, issue
        if collection == "comments" and method == "POST":
            return self._comment(repo, issue, body)
        if collection == "labels" and method == "POST":
            return self._add_labels(repo, issue, body)
        return 404, github_error(404, "Not Found")

    def _issues(self, method: str, repo: str, body: Any) -> tuple[int, Any]:
        if method != "POST":
            return 404, github_error(404, "Not Found")
        if not isinstance(body, dict) or not isinstance(body.get("title"), str) or not body["title"]:
            missing = [{"resource": "Issue", "code": "missing_field", "field": "title"}]
            return 422, github_error(422, "Validation Failed", missing)
        labels = body.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            return 422, github_error(422, "Invalid request.\n\nFor 'properties/labels', it is not an array of strings.")
        return 201, self._create_issue(repo, body)

    def _comment(self, repo: str, issue: dict[str, Any], body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("body"), str) or not body["body"]:
            missing = [{"resource": "IssueComment", "code": "missing_field", "field": "body"}]
            return 422, github_error(422, "Validation Failed", missing)
        comment_id = next(self._ids)
        comment = {
            "id": comment_id,
            "node_id": f"IC_{comment_id}",
            "url": f"{self.base_url}/repos/{repo}/issues/comments/{comment_id}",
            "html_url": f"{issue['html_url']}#issuecomment-{comment_id}",
            "issue_url": issue["url"],
            "body": body["body"],
            "user": self.user,
            "created_at": _timestamp(),
            "updated_at": _timestamp(),
            "author_association": "OWNER",
        }
        issue["comments"] += 1
        self.comments.append(comment)
        return 201, comment

    def _add_labels(self, repo: str, issue: dict[str, Any], body: Any) -> tuple[int, Any]:
        names = body.get("labels") if isinstance(body, dict) else body
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            return 422, github_error(422, "Invalid request.\n\nFor 'properties/labels', it is not an array of strings.")
        present = {label["name"].lower() for label in issue["labels"]}
        for name in names:
            if name.lower() not in present:
                issue["labels"].append(self._label(repo, name))
                present.add(name.lower())
        return 200, issue["labels"]
