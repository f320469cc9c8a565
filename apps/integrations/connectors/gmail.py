"""The ``gmail`` integration: send, read, reply to and search mail; react to received messages.

Calls the Gmail REST API v1 (``NEENA_GMAIL_BASE_URL``, https://gmail.googleapis.com/gmail/v1) as the connected
account (``users/me``). Credential: OAuth2; ``secrets["access_token"]`` goes in ``Authorization: Bearer``; the engine
refreshes it before it expires.

Idempotency: ``users.messages.send`` accepts no idempotency key, so a retry after a lost response may send twice.
Each sent message carries a Message-ID derived from ``context.idempotency_key`` (``<neena.<step id>.<attempt>@...>``,
``<neena.<step id>.retry<n>.<attempt>@...>`` after the run's n-th retry), so every attempt of one step is
recognisable as such in the recipients' mailboxes and in Sent.

Errors: 429, 5xx and Google's rate-limit 403s (``rateLimitExceeded``, ``userRateLimitExceeded``) are retried; other
4xx fail the step with Google's message.
"""

import re
from email.utils import parseaddr
from typing import Any
from urllib.parse import quote

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
from apps.integrations.gmail_messages import (
    body_text,
    decoded_header,
    message_id_header,
    part_headers,
    raw_message,
    sender_address,
    snippet_text,
)
from apps.integrations.http import DEFAULT_TIMEOUT_SECONDS, base_url, retry_after_seconds

# users.messages.send takes no idempotency key: a retry after a lost response may send twice, so sends retry sparingly.

CONNECTOR = ConnectorSpec(
    name="Gmail",
    short_name="gmail",
    class_name="GmailIntegration",
    auth_type=AuthType.OAUTH2,
    description="Gmail mailbox: send mail, read a message, reply in its thread, search messages, and start flows "
    "when a message is received.",
    base_url_setting="NEENA_GMAIL_BASE_URL",
    oauth2=OAuth2Spec(
        authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",
        scopes=(
            "https://www.googleapis.com/auth/gmail.send",
            "https://www.googleapis.com/auth/gmail.readonly",
            "https://www.googleapis.com/auth/gmail.modify",
        ),
        revoke_url="https://oauth2.googleapis.com/revoke",
    ),
    tasks=(
        TaskSpec(
            task_name="Send Gmail Message",
            python_method_name="send_message",
            description="Send an email from the connected Gmail account, e.g. mail a customer or a colleague.",
            parameters=(
                Param("to", DataType.EMAIL, "The recipient's email address."),
                Param("subject", DataType.STRING, "The email's subject line."),
                Param("body", DataType.TEXT, "The email's plain-text body."),
                Param(
                    "cc",
                    DataType.STRING,
                    "Email addresses to copy, separated by commas.",
                    optional=True,
                    default="",
                ),
            ),
            outputs=(
                Param("message_id", DataType.STRING, "The Gmail ID of the sent message."),
                Param("thread_id", DataType.STRING, "The Gmail ID of the thread the message belongs to."),
            ),
            side_effect=True,
            retry=UNREPEATABLE_RETRY,
        ),
        TaskSpec(
            task_name="Read Gmail Message",
            python_method_name="read_message",
            description="Read, get or fetch a Gmail message by its ID: sender, subject, body and snippet.",
            parameters=(Param("message_id", DataType.STRING, "The Gmail ID of the message to read."),),
            outputs=(
                Param("message_id", DataType.STRING, "The message's Gmail ID."),
                Param("thread_id", DataType.STRING, "The Gmail ID of the message's thread."),
                Param("from_address", DataType.EMAIL, "The sender's email address, from the From header."),
                Param("subject", DataType.STRING, "The message's subject line."),
                Param("body", DataType.TEXT, "The message's plain-text body."),
                Param("snippet", DataType.STRING, "Gmail's short preview of the message text."),
            ),
            retry=REPEATABLE_RETRY,
        ),
        TaskSpec(
            task_name="Reply to Gmail Message",
            python_method_name="reply_to_message",
            description="Reply to a Gmail message in its thread, sending the answer to its sender.",
            parameters=(
                Param("message_id", DataType.STRING, "The Gmail ID of the message to reply to."),
                Param("body", DataType.TEXT, "The reply's plain-text body."),
            ),
            outputs=(
                Param("message_id", DataType.STRING, "The Gmail ID of the sent reply."),
                Param("thread_id", DataType.STRING, "The Gmail ID of the thread the reply was added to."),
            ),
            side_effect=True,
            retry=UNREPEATABLE_RETRY,
        ),
        TaskSpec(
            task_name="Search Gmail Messages",
            python_method_name="search_messages",
            description="Search or list Gmail messages matching a query, e.g. 'from:alice@example.com is:unread'.",
            parameters=(
                Param("query", DataType.STRING, "A Gmail search query, the same syntax as the Gmail search box."),
                Param("max_results", DataType.INT, "The most messages to return.", optional=True, default=10),
            ),
            outputs=(
                Param(
                    "messages",
                    DataType.LIST,
                    "The matching messages, newest first, each with message_id, thread_id, from_address, subject "
                    "and snippet.",
                ),
            ),
            output_is_list=True,
            retry=REPEATABLE_RETRY,
        ),
    ),
    triggers=(
        TriggerSpec(
            trigger_name="Gmail Message Received",
            python_method_name="message_received",
            description="Start a flow when a message arrives in the Gmail inbox, as posted by Neena's mail relay "
            "(signed with Standard Webhooks, as the generic webhook integration is).",
            event_fields=(
                EventField("message_id", "$.message.id", DataType.STRING, "The Gmail ID of the received message."),
                EventField("thread_id", "$.message.thread_id", DataType.STRING, "The Gmail ID of its thread."),
                EventField("from_address", "$.message.from", DataType.EMAIL, "The sender's email address."),
                EventField("subject", "$.message.subject", DataType.STRING, "The message's subject line."),
                EventField("body", "$.message.body", DataType.TEXT, "The message's plain-text body.", optional=True),
            ),
            entity_id_field="message_id",
            signature_scheme=SignatureScheme.STANDARD_WEBHOOKS,
        ),
    ),
)


# --- Implementations ---------------------------------------------------------------------------------------------

DEFAULT_BASE_URL = "https://gmail.googleapis.com/gmail/v1"
# Each search result costs one more request (users.messages.list gives ids only), so a search reads at most this many.
MAX_SEARCH_RESULTS = 100
# Google's reasons for a 403 that means "slow down", not "forbidden": retried like a 429.
RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}
# The same transport failures the shared helper (apps.integrations.http.request) retries.
TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
GMAIL_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
REPLY_PREFIX = re.compile(r"^\s*re\s*:", re.IGNORECASE)


def _google_error(response: httpx.Response) -> tuple[str, set[str]]:
    """Google's message and reasons, from ``{"error": {"message": ..., "errors": [{"reason": ...}]}}``."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase, set()
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):  # OAuth-style answers: {"error": "invalid_token", "error_description": ...}
        return str(body.get("error_description") or error), set()
    if not isinstance(error, dict):
        return str(body)[:300], set()
    reasons = {str(item.get("reason")) for item in error.get("errors") or [] if isinstance(item, dict)}
    return str(error.get("message") or error.get("status") or response.reason_phrase), reasons


def _call(context: TaskContext, method: str, path: str, *, params: Any = None, json: Any = None) -> dict[str, Any]:
    """One call to ``users/me/<path>`` as the connected account; returns the JSON answer.

    The shared helper's mapping, plus Google's rate-limit 403s as retries, with Google's own message rather than its
    whole error object: 429, those 403s and 5xx are retried (after any Retry-After), other 4xx fail the step.
    """
    token = context.require_credential().secrets.get("access_token")
    if not token:
        raise TaskError("The Gmail credential has no access token: reconnect Gmail.")
    url = f"{base_url('NEENA_GMAIL_BASE_URL', DEFAULT_BASE_URL)}/users/me/{path}"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    try:
        # The setting or Google's own address: the operator's choice, so trusted.
        response = egress.request(
            method, url, trusted=True, params=params, json=json, headers=headers, timeout=DEFAULT_TIMEOUT_SECONDS
        )
    except TRANSPORT_ERRORS as error:
        raise TransientTaskError(f"Gmail could not be reached: {type(error).__name__}: {error}") from error
    status = response.status_code
    if status >= 400:
        message, reasons = _google_error(response)
        retry_after = retry_after_seconds(response)
        if status == 429 or (status == 403 and reasons & RATE_LIMIT_REASONS):
            raise TransientTaskError(f"Gmail is rate limiting ({status}): {message}", retry_after=retry_after)
        if status >= 500:
            raise TransientTaskError(f"Gmail answered {status}: {message}", retry_after=retry_after)
        raise TaskError(f"Gmail refused the request ({status}): {message}")
    try:
        answer = response.json()
    except ValueError as error:
        raise TaskError(f"Gmail answered {status} with something other than JSON.") from error
    if not isinstance(answer, dict):
        raise TaskError(f"Gmail answered {status} with {type(answer).__name__}, not an object.")
    return answer


def _gmail_id(value: str, what: str = "message") -> str:
    """A Gmail id, checked before it goes into a URL path."""
    value = str(value).strip()
    if not GMAIL_ID.match(value):
        raise TaskError(f"'{value}' is not a Gmail {what} ID.")
    return value


def _required(answer: dict[str, Any], key: str) -> str:
    value = answer.get(key)
    if not value:
        raise TaskError(f"Gmail's answer has no '{key}'.")
    return str(value)


def send_message(context: TaskContext, *, to: str, subject: str, body: str, cc: str = "") -> dict[str, Any]:
    """Sends a new plain-text message (users.messages.send); Gmail adds the From of the connected account."""
    raw = raw_message(to=to, subject=subject, body=body, cc=cc, message_id=message_id_header(context.idempotency_key))
    sent = _call(context, "POST", "messages/send", json={"raw": raw})
    return {"message_id": _required(sent, "id"), "thread_id": _required(sent, "threadId")}


def read_message(context: TaskContext, *, message_id: str) -> dict[str, Any]:
    """Reads one message in full (users.messages.get, format=full) and decodes its headers and text body."""
    message = _call(context, "GET", f"messages/{quote(_gmail_id(message_id), safe='')}", params={"format": "full"})
    payload = message.get("payload") or {}
    headers = part_headers(payload)
    return {
        "message_id": _required(message, "id"),
        "thread_id": _required(message, "threadId"),
        "from_address": sender_address(headers),
        "subject": decoded_header(headers.get("subject", "")),
        "body": body_text(payload),
        "snippet": snippet_text(message),
    }


def reply_to_message(context: TaskContext, *, message_id: str, body: str) -> dict[str, Any]:
    """Answers a message in its thread, as a mail client does.

    1. Read the original's headers (format=metadata): Message-ID, References, Subject, From, Reply-To, its thread.
    2. Send to its Reply-To (else From) with "Re: " before the subject, In-Reply-To and References naming the
       original, and the original's threadId: Gmail files the reply in the thread only with both.
    """
    original = _call(
        context,
        "GET",
        f"messages/{quote(_gmail_id(message_id), safe='')}",
        params={"format": "metadata", "metadataHeaders": ["Message-ID", "References", "Subject", "From", "Reply-To"]},
    )
    headers = part_headers(original.get("payload") or {})
    recipient = headers.get("reply-to") or headers.get("from", "")
    if not parseaddr(recipient)[1]:
        raise TaskError(f"Gmail message {message_id} has no sender address to reply to.")
    subject = decoded_header(headers.get("subject", ""))
    if not REPLY_PREFIX.match(subject):
        subject = f"Re: {subject}".rstrip()
    original_id = headers.get("message-id", "").strip()
    references = " ".join(part for part in (headers.get("references", "").strip(), original_id) if part)
    raw = raw_message(
        to=recipient,
        subject=subject,
        body=body,
        message_id=message_id_header(context.idempotency_key),
        replying_to=original_id,
        references=references,
    )
    sent = _call(context, "POST", "messages/send", json={"raw": raw, "threadId": _required(original, "threadId")})
    return {"message_id": _required(sent, "id"), "thread_id": _required(sent, "threadId")}


def search_messages(context: TaskContext, *, query: str, max_results: int = 10) -> dict[str, Any]:
    """Searches with Gmail's query syntax, newest first.

    users.messages.list gives only ids, so its pages are followed up to ``max_results`` (at most
    ``MAX_SEARCH_RESULTS``) and each message's From and Subject are then read with format=metadata.
    """
    if max_results < 1:
        raise TaskError("Search Gmail Messages needs max_results of at least 1.")
    limit = min(max_results, MAX_SEARCH_RESULTS)
    found: list[dict[str, Any]] = []
    page_token = ""
    while len(found) < limit:
        params: dict[str, Any] = {"q": query, "maxResults": limit - len(found)}
        if page_token:
            params["pageToken"] = page_token
        page = _call(context, "GET", "messages", params=params)
        found.extend(page.get("messages") or [])
        page_token = str(page.get("nextPageToken") or "")
        if not page_token:
            break
    messages = []
    for entry in found[:limit]:
        message = _call(
            context,
            "GET",
            f"messages/{quote(_gmail_id(entry.get('id', '')), safe='')}",
            params={"format": "metadata", "metadataHeaders": ["From", "Subject"]},
        )
        headers = part_headers(message.get("payload") or {})
        messages.append(
            {
                "message_id": _required(message, "id"),
                "thread_id": _required(message, "threadId"),
                "from_address": sender_address(headers),
                "subject": decoded_header(headers.get("subject", "")),
                "snippet": snippet_text(message),
            }
        )
    return {"messages": messages}
