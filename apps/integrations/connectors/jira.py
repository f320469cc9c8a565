"""The ``jira`` integration: create issues, comment on them and move them through their workflow (Jira Cloud).

Calls the Jira Cloud REST API v3 at ``NEENA_JIRA_BASE_URL`` when set (tests point it at a fake), else at the
credential's site, ``https://{config["site"]}.atlassian.net``. The site is the user's, so the egress guard lets it
reach public addresses only; the setting is the operator's and may point anywhere. Credential: basic auth with an
Atlassian API token, ``secrets["api_key"]`` (the token) and ``config["email"]`` (the Atlassian account's email), plus
``config["site"]`` (``"acme"`` for https://acme.atlassian.net). Texts are sent as Atlassian Document Format, as v3
requires.

Idempotency: Jira accepts no idempotency key, so a retry after a lost response may create a second issue or comment
(hence the sparing retries below). A transition is safe to retry: an issue already in the asked status succeeds.

Errors: 429 (with its Retry-After) and 5xx are retried; other 4xx fail the step with Jira's ``errorMessages`` and
field ``errors``.
"""

import re
from typing import Any
from urllib.parse import quote

import httpx
from django.conf import settings

from apps.integrations import egress
from apps.integrations.connectors.base import (
    REPEATABLE_RETRY,
    UNREPEATABLE_RETRY,
    AuthType,
    ConnectorSpec,
    DataType,
    Param,
    TaskSpec,
)
from apps.integrations.execution import CredentialAccess, TaskContext, TaskError, TransientTaskError
from apps.integrations.http import DEFAULT_TIMEOUT_SECONDS, base_url, retry_after_seconds

# Creating issues and comments takes no idempotency key: a retry after a lost response may repeat it, so they retry
# sparingly. A transition to the status the issue is already in succeeds, so transitions retry freely.

ISSUE_KEY = Param("issue_key", DataType.STRING, "The issue's key, e.g. 'OPS-42'.")

CONNECTOR = ConnectorSpec(
    name="Jira",
    short_name="jira",
    class_name="JiraIntegration",
    auth_type=AuthType.BASIC,
    description="Jira Cloud projects: create issues, comment on them and move them to another status (close, "
    "start, reopen).",
    base_url_setting="NEENA_JIRA_BASE_URL",
    tasks=(
        TaskSpec(
            task_name="Create Jira Issue",
            python_method_name="create_issue",
            description="Create or open an issue in a Jira project, e.g. log a bug, task or story for a team.",
            parameters=(
                Param("project_key", DataType.STRING, "The Jira project's key, e.g. 'OPS'."),
                Param("summary", DataType.STRING, "The issue's summary: its one-line title."),
                Param("description", DataType.TEXT, "The issue's description.", optional=True, default=""),
                Param(
                    "issue_type",
                    DataType.STRING,
                    "The issue type's name, e.g. 'Task', 'Bug' or 'Story'.",
                    optional=True,
                    default="Task",
                ),
            ),
            outputs=(
                Param("issue_key", DataType.STRING, "The new issue's key, e.g. 'OPS-42'."),
                Param("url", DataType.URL, "The issue's web address."),
            ),
            side_effect=True,
            retry=UNREPEATABLE_RETRY,
        ),
        TaskSpec(
            task_name="Comment on Jira Issue",
            python_method_name="comment_on_issue",
            description="Comment on a Jira issue, or add a note to it.",
            parameters=(ISSUE_KEY, Param("body", DataType.TEXT, "The comment text.")),
            outputs=(Param("comment_id", DataType.STRING, "The ID of the new comment."),),
            side_effect=True,
            retry=UNREPEATABLE_RETRY,
        ),
        TaskSpec(
            task_name="Transition Jira Issue",
            python_method_name="transition_issue",
            description="Move or transition a Jira issue to another status in its workflow, e.g. close it, mark it "
            "Done or start progress.",
            parameters=(
                ISSUE_KEY,
                Param(
                    "transition",
                    DataType.STRING,
                    "The status to move the issue to, or the transition's name, e.g. 'Done' or 'In Progress'.",
                ),
            ),
            outputs=(
                Param("issue_key", DataType.STRING, "The moved issue's key."),
                Param("status", DataType.STRING, "The issue's status afterwards."),
            ),
            side_effect=True,
            retry=REPEATABLE_RETRY,
        ),
    ),
)


# --- Implementations ---------------------------------------------------------------------------------------------

# An Atlassian Cloud site is a single DNS label under atlassian.net: nothing from the credential picks another host.
SITE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
PROJECT_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,254}$")
ISSUE_ID_OR_KEY = re.compile(r"^(?:[A-Za-z][A-Za-z0-9_]*-\d+|\d+)$")
# The same transport failures the shared helper (apps.integrations.http.request) retries.
TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def _site_url(credential: CredentialAccess) -> str:
    """``https://{site}.atlassian.net`` from the credential's config (``acme``, ``acme.atlassian.net`` or its URL)."""
    given = str(credential.config.get("site") or "").strip()
    site = re.sub(r"^https?://", "", given.lower()).rstrip("/").removesuffix(".atlassian.net")
    if not site:
        raise TaskError(
            'The Jira credential names no site: store it in its config, e.g. {"site": "acme"} for '
            "https://acme.atlassian.net."
        )
    if not SITE_NAME.match(site):
        raise TaskError(
            f"'{given}' is not a Jira Cloud site; give its name, e.g. 'acme' for https://acme.atlassian.net."
        )
    return f"https://{site}.atlassian.net"


def _jira_url(credential: CredentialAccess) -> tuple[str, bool]:
    """The setting when set (a fake in tests, a proxy), else the credential's own site; and whether it is the
    setting (the operator's choice, trusted by the egress guard) rather than the user's site."""
    if getattr(settings, "NEENA_JIRA_BASE_URL", ""):
        return base_url("NEENA_JIRA_BASE_URL"), True
    return base_url("NEENA_JIRA_BASE_URL", _site_url(credential)), False


def _error_message(response: httpx.Response) -> str:
    """Jira's ``errorMessages`` and its per-field ``errors`` (``summary: You must specify a summary``)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if not isinstance(body, dict):
        return str(body)[:300]
    parts = [str(message) for message in body.get("errorMessages") or []]
    errors = body.get("errors")
    if isinstance(errors, dict):
        parts += [f"{field}: {message}" for field, message in errors.items()]
    if not parts and body.get("message"):
        parts.append(str(body["message"]))
    return "; ".join(parts) or response.reason_phrase


def _call(context: TaskContext, method: str, path: str, *, params: Any = None, json: Any = None) -> tuple[str, Any]:
    """One call to ``/rest/api/3/<path>`` with the account's email and API token; returns the site's URL and the
    JSON answer (None for 204).

    The shared helper's mapping, with Jira's own messages rather than its error object: 429 (after its Retry-After)
    and 5xx are retried, other 4xx fail the step.
    """
    credential = context.require_credential()
    email = str(credential.config.get("email") or "")
    token = str(credential.secrets.get("api_key") or "")
    if not email or not token:
        raise TaskError(
            "The Jira credential needs the API token (api_key) and the Atlassian account's email in its config."
        )
    site, operator_set = _jira_url(credential)
    try:
        response = egress.request(
            method,
            f"{site}/rest/api/3/{path}",
            trusted=operator_set,
            params=params,
            json=json,
            auth=(email, token),
            headers={"Accept": "application/json"},
            timeout=DEFAULT_TIMEOUT_SECONDS,
        )
    except TRANSPORT_ERRORS as error:
        raise TransientTaskError(f"Jira could not be reached: {type(error).__name__}: {error}") from error
    status = response.status_code
    if status == 429:
        raise TransientTaskError(
            f"Jira is rate limiting (429): {_error_message(response)}", retry_after=retry_after_seconds(response)
        )
    if status >= 500:
        raise TransientTaskError(f"Jira answered {status}: {_error_message(response)}")
    if status >= 400:
        raise TaskError(f"Jira refused the request ({status}): {_error_message(response)}")
    if status == 204 or not response.content:
        return site, None
    try:
        return site, response.json()
    except ValueError as error:
        raise TaskError(f"Jira answered {status} with something other than JSON.") from error


def _issue_path(issue_key: str) -> str:
    """``issue/<key>``, from a key (``OPS-42``) or numeric id checked before it goes into the path."""
    key = str(issue_key).strip()
    if not ISSUE_ID_OR_KEY.match(key):
        raise TaskError(f"'{issue_key}' is not a Jira issue key such as 'OPS-42'.")
    return f"issue/{quote(key, safe='')}"


def _document(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document: a paragraph per blank-line-separated block, its line breaks kept."""
    paragraphs = []
    for block in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n").strip("\n")):
        content: list[dict[str, Any]] = []
        for index, line in enumerate(block.split("\n")):
            if index:
                content.append({"type": "hardBreak"})
            if line:  # ADF refuses empty text nodes
                content.append({"type": "text", "text": line})
        paragraphs.append({"type": "paragraph", "content": content})
    return {"type": "doc", "version": 1, "content": paragraphs}


def _field(answer: Any, key: str) -> str:
    if not isinstance(answer, dict) or answer.get(key) in (None, ""):
        raise TaskError(f"Jira's answer has no '{key}'.")
    return str(answer[key])


def create_issue(
    context: TaskContext, *, project_key: str, summary: str, description: str = "", issue_type: str = "Task"
) -> dict[str, Any]:
    """Creates an issue (POST /rest/api/3/issue) and returns its key and browse URL."""
    project = str(project_key).strip()
    if not PROJECT_KEY.match(project):
        raise TaskError(f"'{project_key}' is not a Jira project key such as 'OPS'.")
    if not summary.strip():
        raise TaskError("A Jira issue needs a summary.")
    fields: dict[str, Any] = {
        "project": {"key": project},
        "summary": summary.strip(),
        "issuetype": {"name": (issue_type or "Task").strip()},
    }
    if description.strip():
        fields["description"] = _document(description)
    site, issue = _call(context, "POST", "issue", json={"fields": fields})
    key = _field(issue, "key")
    return {"issue_key": key, "url": f"{site}/browse/{quote(key, safe='')}"}


def comment_on_issue(context: TaskContext, *, issue_key: str, body: str) -> dict[str, Any]:
    """Adds a comment (POST /rest/api/3/issue/{key}/comment)."""
    path = _issue_path(issue_key)
    if not body.strip():
        raise TaskError("A Jira comment needs a body.")
    _, comment = _call(context, "POST", f"{path}/comment", json={"body": _document(body)})
    return {"comment_id": _field(comment, "id")}


def _transition_label(transition: dict[str, Any]) -> str:
    target = (transition.get("to") or {}).get("name")
    name = str(transition.get("name", ""))
    return f"'{name}'" + (f" (to {target})" if target and target != name else "")


def transition_issue(context: TaskContext, *, issue_key: str, transition: str) -> dict[str, Any]:
    """Moves an issue along its workflow.

    1. List the transitions open to the issue now (GET /rest/api/3/issue/{key}/transitions).
    2. Pick the one named ``transition``, else the one leading to a status of that name (case-insensitive).
    3. None: when the issue is already in that status (a retried step), succeed; else fail, listing the choices.
    4. POST its id to the same path.
    """
    path = _issue_path(issue_key)
    wanted = str(transition).strip().casefold()
    if not wanted:
        raise TaskError("Transition Jira Issue needs the status or transition to move the issue to.")
    _, answer = _call(context, "GET", f"{path}/transitions")
    available = [item for item in (answer or {}).get("transitions") or [] if isinstance(item, dict)]
    chosen = next((item for item in available if str(item.get("name", "")).casefold() == wanted), None) or next(
        (item for item in available if str((item.get("to") or {}).get("name", "")).casefold() == wanted), None
    )
    if chosen is None:
        _, issue = _call(context, "GET", path, params={"fields": "status"})
        status = str((((issue or {}).get("fields") or {}).get("status") or {}).get("name", ""))
        if status.casefold() == wanted:
            return {"issue_key": str(issue_key).strip(), "status": status}
        choices = ", ".join(_transition_label(item) for item in available) or "none"
        raise TaskError(
            f"Jira issue {issue_key} (status '{status}') has no transition '{transition}'; available: {choices}."
        )
    _call(context, "POST", f"{path}/transitions", json={"transition": {"id": _field(chosen, "id")}})
    target = str((chosen.get("to") or {}).get("name") or chosen.get("name", ""))
    return {"issue_key": str(issue_key).strip(), "status": target}
