"""The ``github`` integration: open, comment on and label issues; react to opened issues and new comments.

Calls the GitHub REST API (``NEENA_GITHUB_BASE_URL``, https://api.github.com), version 2022-11-28. Credential:
OAuth2 (or a token stored as one); ``secrets["access_token"]`` goes in ``Authorization: Bearer``.

Idempotency: GitHub accepts no idempotency key, so a retry after a lost response may open a second issue or post a
second comment (hence the sparing retries below); adding labels is idempotent.

Errors: GitHub's rate limits (403 or 429 with ``x-ratelimit-remaining: 0``, and its secondary limits, which come with
``retry-after`` or say so in their message) are retried after the wait GitHub names; 5xx are retried; other 4xx
(403, 404, 422) fail the step with GitHub's message.
"""

import re
import time
from typing import Any

import httpx

from apps.integrations import egress
from apps.integrations.connectors.base import (
    REPEATABLE_RETRY,
    UNREPEATABLE_RETRY,
    AuthType,
    ConnectorSpec,
    DataType,
    EventField,
    OAuth2Spec,
    Param,
    SignatureScheme,
    TaskSpec,
    TriggerSpec,
)
from apps.integrations.execution import TaskContext, TaskError, TransientTaskError
from apps.integrations.http import DEFAULT_TIMEOUT_SECONDS, base_url, raise_for_status, retry_after_seconds

# Creating issues and comments takes no idempotency key: a retry after a lost response may repeat it, so they retry
# sparingly. Adding labels is idempotent (a label already present is kept once).

REPO = Param("repo", DataType.STRING, "The repository as 'owner/name', e.g. 'octocat/hello-world'.")

CONNECTOR = ConnectorSpec(
    name="GitHub",
    short_name="github",
    class_name="GitHubIntegration",
    auth_type=AuthType.OAUTH2,
    description="GitHub repositories: open issues, comment on them and add labels, and start flows when an issue is "
    "opened or commented on.",
    base_url_setting="NEENA_GITHUB_BASE_URL",
    oauth2=OAuth2Spec(
        authorize_url="https://github.com/login/oauth/authorize",
        token_url="https://github.com/login/oauth/access_token",
        scopes=("repo",),
    ),
    tasks=(
        TaskSpec(
            task_name="Create GitHub Issue",
            python_method_name="create_issue",
            description="Create or open an issue in a GitHub repository, e.g. file a bug report from a ticket.",
            parameters=(
                REPO,
                Param("title", DataType.STRING, "The issue's title."),
                Param(
                    "body", DataType.TEXT, "The issue's description; Markdown is allowed.", optional=True, default=""
                ),
                Param("labels", DataType.LIST, "Label names to add to the issue.", optional=True, default=[]),
            ),
            outputs=(
                Param("issue_number", DataType.INT, "The new issue's number within the repository."),
                Param("html_url", DataType.URL, "The issue's web address."),
            ),
            side_effect=True,
            retry=UNREPEATABLE_RETRY,
        ),
        TaskSpec(
            task_name="Comment on GitHub Issue",
            python_method_name="comment_on_issue",
            description="Comment on or reply to a GitHub issue or pull request.",
            parameters=(
                REPO,
                Param("issue_number", DataType.INT, "The number of the issue or pull request to comment on."),
                Param("body", DataType.TEXT, "The comment text; Markdown is allowed."),
            ),
            outputs=(
                Param("comment_id", DataType.INT, "The ID of the new comment."),
                Param("html_url", DataType.URL, "The comment's web address."),
            ),
            side_effect=True,
            retry=UNREPEATABLE_RETRY,
        ),
        TaskSpec(
            task_name="Add GitHub Label",
            python_method_name="add_labels",
            description="Add labels to a GitHub issue or pull request, e.g. label it 'bug' or 'needs-triage'.",
            parameters=(
                REPO,
                Param("issue_number", DataType.INT, "The number of the issue or pull request to label."),
                Param("labels", DataType.LIST, "Label names to add; labels already on the issue are kept."),
            ),
            outputs=(Param("labels", DataType.LIST, "All labels on the issue after the change."),),
            side_effect=True,
            retry=REPEATABLE_RETRY,
        ),
    ),
    triggers=(
        TriggerSpec(
            trigger_name="GitHub Issue Opened",
            python_method_name="issue_opened",
            description="Start a flow when an issue is opened in a GitHub repository (issues event, action 'opened').",
            event_fields=(
                EventField("issue_number", "$.issue.number", DataType.INT, "The issue's number within the repository."),
                EventField("title", "$.issue.title", DataType.STRING, "The issue's title."),
                EventField("body", "$.issue.body", DataType.TEXT, "The issue's description.", optional=True),
                EventField("repo", "$.repository.full_name", DataType.STRING, "The repository as 'owner/name'."),
                EventField("sender", "$.sender.login", DataType.STRING, "The login of the user who opened it."),
                EventField("action", "$.action", DataType.STRING, "The event's action, 'opened'."),
            ),
            entity_id_field="issue_number",
            signature_scheme=SignatureScheme.GITHUB_SHA256,
        ),
        TriggerSpec(
            trigger_name="GitHub Issue Comment Created",
            python_method_name="issue_comment_created",
            description="Start a flow when someone comments on a GitHub issue or pull request (issue_comment event).",
            event_fields=(
                EventField("issue_number", "$.issue.number", DataType.INT, "The number of the commented issue."),
                EventField("comment_id", "$.comment.id", DataType.INT, "The new comment's ID."),
                EventField("comment_body", "$.comment.body", DataType.TEXT, "The comment text."),
                EventField("repo", "$.repository.full_name", DataType.STRING, "The repository as 'owner/name'."),
                EventField("sender", "$.sender.login", DataType.STRING, "The login of the user who commented."),
            ),
            entity_id_field="issue_number",
            signature_scheme=SignatureScheme.GITHUB_SHA256,
        ),
    ),
)


# --- Implementations ---------------------------------------------------------------------------------------------

SERVICE = "GitHub"
DEFAULT_BASE_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
# GitHub's rules for names: an owner is up to 39 letters, digits and single hyphens; a repository adds . and _.
REPOSITORY_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]{0,38})/([A-Za-z0-9._-]{1,100})$")
# GitHub asks to wait at least a minute after a secondary rate limit that names no time.
UNNAMED_RATE_LIMIT_WAIT_SECONDS = 60.0
# The same transport failures the shared helper (apps.integrations.http.request) retries.
TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def _error_message(response: httpx.Response) -> str:
    """GitHub's ``message``, with the details of a 422's ``errors`` (``Issue.title missing_field``)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if not isinstance(body, dict):
        return str(body)[:300]
    message = str(body.get("message") or response.reason_phrase)
    details = []
    for error in body.get("errors") or []:
        if isinstance(error, dict):
            where = ".".join(str(error[key]) for key in ("resource", "field") if error.get(key))
            what = error.get("message") or error.get("code") or ""
            details.append(f"{where} {what}".strip())
        else:
            details.append(str(error))
    return f"{message} ({'; '.join(details)})" if details else message


def _rate_limit_wait(response: httpx.Response, message: str) -> float | None:
    """Seconds to wait when a 403 or 429 is one of GitHub's rate limits; None when it is a plain refusal.

    Primary limit: ``x-ratelimit-remaining: 0``, wait for ``retry-after`` or until ``x-ratelimit-reset`` (epoch
    seconds). Secondary limit: ``retry-after``, or a message saying so and a wait of at least a minute.
    """
    if response.status_code not in (403, 429):
        return None
    retry_after = retry_after_seconds(response)
    if response.headers.get("x-ratelimit-remaining") == "0":
        if retry_after is not None:
            return retry_after
        try:
            return max(0.0, float(response.headers.get("x-ratelimit-reset", "")) - time.time())
        except ValueError:
            return UNNAMED_RATE_LIMIT_WAIT_SECONDS
    if retry_after is not None:
        return retry_after
    if response.status_code == 429 or "rate limit" in message.lower():
        return UNNAMED_RATE_LIMIT_WAIT_SECONDS
    return None


def _call(context: TaskContext, method: str, path: str, *, json: Any = None) -> Any:
    """One call to the REST API as the connected account; returns the JSON answer.

    Rate limits are checked first (GitHub answers them with 403 as well as 429); other 4xx fail with GitHub's message;
    5xx go through the shared mapping.
    """
    token = context.require_credential().secrets.get("access_token")
    if not token:
        raise TaskError("The GitHub credential has no access token: reconnect GitHub.")
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": API_VERSION,
        "User-Agent": "Neena",
    }
    url = f"{base_url('NEENA_GITHUB_BASE_URL', DEFAULT_BASE_URL)}/{path}"
    try:
        # The setting or GitHub's own address: the operator's choice, so trusted.
        response = egress.request(
            method, url, trusted=True, json=json, headers=headers, timeout=DEFAULT_TIMEOUT_SECONDS
        )
    except TRANSPORT_ERRORS as error:
        raise TransientTaskError(f"GitHub could not be reached: {type(error).__name__}: {error}") from error
    status = response.status_code
    if 400 <= status < 500:
        message = _error_message(response)
        wait = _rate_limit_wait(response, message)
        if wait is not None:
            raise TransientTaskError(f"GitHub is rate limiting ({status}): {message}", retry_after=wait)
        if status == 404:
            message += " (does the repository or issue exist, and may the connected account see it?)"
        raise TaskError(f"GitHub refused the request ({status}): {message}")
    raise_for_status(response, SERVICE)
    try:
        return response.json()
    except ValueError as error:
        raise TaskError(f"GitHub answered {status} with something other than JSON.") from error


def _repository_path(repo: str) -> str:
    """``repos/<owner>/<name>``, from a repository checked to be 'owner/name'."""
    match = REPOSITORY_NAME.match(str(repo).strip())
    if not match or match.group(2) in (".", ".."):
        raise TaskError(f"'{repo}' is not a repository as 'owner/name', e.g. 'octocat/hello-world'.")
    return f"repos/{match.group(1)}/{match.group(2)}"


def _issue_path(repo: str, issue_number: int) -> str:
    if isinstance(issue_number, bool) or not isinstance(issue_number, int) or issue_number < 1:
        raise TaskError(f"'{issue_number}' is not an issue number.")
    return f"{_repository_path(repo)}/issues/{issue_number}"


def _label_names(labels: list[Any]) -> list[str]:
    return [str(label).strip() for label in labels if str(label).strip()]


def _field(answer: Any, key: str) -> Any:
    if not isinstance(answer, dict) or answer.get(key) in (None, ""):
        raise TaskError(f"GitHub's answer has no '{key}'.")
    return answer[key]


def create_issue(
    context: TaskContext, *, repo: str, title: str, body: str = "", labels: list[Any] | None = None
) -> dict[str, Any]:
    """Opens an issue (POST /repos/{owner}/{repo}/issues); GitHub drops the labels silently unless the account may
    push to the repository."""
    path = _repository_path(repo)
    if not title.strip():
        raise TaskError("A GitHub issue needs a title.")
    payload: dict[str, Any] = {"title": title}
    if body:
        payload["body"] = body
    names = _label_names(labels or [])
    if names:
        payload["labels"] = names
    issue = _call(context, "POST", f"{path}/issues", json=payload)
    return {"issue_number": int(_field(issue, "number")), "html_url": str(_field(issue, "html_url"))}


def comment_on_issue(context: TaskContext, *, repo: str, issue_number: int, body: str) -> dict[str, Any]:
    """Comments on an issue or pull request (POST /repos/{owner}/{repo}/issues/{number}/comments)."""
    path = _issue_path(repo, issue_number)
    if not body.strip():
        raise TaskError("A GitHub comment needs a body.")
    comment = _call(context, "POST", f"{path}/comments", json={"body": body})
    return {"comment_id": int(_field(comment, "id")), "html_url": str(_field(comment, "html_url"))}


def add_labels(context: TaskContext, *, repo: str, issue_number: int, labels: list[Any]) -> dict[str, Any]:
    """Adds labels (POST /repos/{owner}/{repo}/issues/{number}/labels), keeping those already there, and returns
    every label on the issue afterwards. An empty list is refused here: it would ask GitHub to remove them all."""
    path = _issue_path(repo, issue_number)
    names = _label_names(labels)
    if not names:
        raise TaskError("Add GitHub Label needs at least one label.")
    answer = _call(context, "POST", f"{path}/labels", json={"labels": names})
    if not isinstance(answer, list):
        raise TaskError("GitHub's answer is not the list of the issue's labels.")
    return {"labels": [str(label.get("name")) for label in answer if isinstance(label, dict)]}
