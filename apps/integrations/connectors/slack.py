"""The ``slack`` integration: post and reply to messages in channels, list channels, react to posted messages.

Credential (OAuth2): ``secrets["access_token"]``, the workspace's bot token (``xoxb-...``) from the OAuth2 exchange,
sent as ``Authorization: Bearer``. Calls go to NEENA_SLACK_BASE_URL (https://slack.com/api).

Slack answers most failures with HTTP 200 and ``{"ok": false, "error": "<code>"}``: ``ratelimited`` (like HTTP 429,
with its Retry-After) and Slack's own server-side codes are retried; any other code fails the step, naming it.
chat.postMessage accepts no idempotency key, so ``context.idempotency_key`` is not sent: posts are side effects
retried sparingly (``UNREPEATABLE_RETRY``), since a retry after a lost answer may post twice.
"""

from typing import Any

import httpx

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
from apps.integrations.http import base_url, request, retry_after_seconds

# chat.postMessage takes no idempotency key: a retry after a lost response may post twice, so posts retry sparingly.
# Slack answers rate limits with 429 and Retry-After, which the retry honours.

CONNECTOR = ConnectorSpec(
    name="Slack",
    short_name="slack",
    class_name="SlackIntegration",
    auth_type=AuthType.OAUTH2,
    description="Slack workspace messaging: post messages to channels, reply in threads, list channels, "
    "and start flows when a message is posted.",
    base_url_setting="NEENA_SLACK_BASE_URL",
    oauth2=OAuth2Spec(
        authorize_url="https://slack.com/oauth/v2/authorize",
        token_url="https://slack.com/api/oauth.v2.access",
        scopes=("chat:write", "channels:read", "channels:history"),
        revoke_url="https://slack.com/api/auth.revoke",
    ),
    tasks=(
        TaskSpec(
            task_name="Post Slack Message",
            python_method_name="post_message",
            description="Send or post a message to a Slack channel, e.g. notify #support about a new ticket.",
            parameters=(
                Param("channel", DataType.STRING, "The channel ID (e.g. 'C0123456789') or name (e.g. '#support')."),
                Param("text", DataType.TEXT, "The message text; Slack mrkdwn formatting is allowed."),
            ),
            outputs=(
                Param("channel", DataType.STRING, "The ID of the channel the message was posted to."),
                Param("ts", DataType.STRING, "The message's timestamp, Slack's ID for it (e.g. '1712345678.123456')."),
            ),
            side_effect=True,
            retry=UNREPEATABLE_RETRY,
        ),
        TaskSpec(
            task_name="Reply in Slack Thread",
            python_method_name="reply_in_thread",
            description="Reply to a Slack message in its thread, e.g. answer a question posted in a channel.",
            parameters=(
                Param("channel", DataType.STRING, "The ID of the channel holding the message to reply to."),
                Param("thread_ts", DataType.STRING, "The ts of the parent message that starts the thread."),
                Param("text", DataType.TEXT, "The reply text; Slack mrkdwn formatting is allowed."),
            ),
            outputs=(Param("ts", DataType.STRING, "The timestamp (ID) of the posted reply."),),
            side_effect=True,
            retry=UNREPEATABLE_RETRY,
        ),
        TaskSpec(
            task_name="List Slack Channels",
            python_method_name="list_channels",
            description="List or fetch the public channels in the Slack workspace, with their IDs and names.",
            parameters=(
                Param("limit", DataType.INT, "The most channels to return (1-1000).", optional=True, default=100),
            ),
            outputs=(
                Param("channels", DataType.LIST, "The channels, each with id, name, is_private and num_members."),
            ),
            output_is_list=True,
            retry=REPEATABLE_RETRY,
        ),
    ),
    triggers=(
        TriggerSpec(
            trigger_name="Slack Message Posted",
            python_method_name="message_posted",
            description="Start a flow when a message is posted in a Slack channel the app is in (Events API message).",
            event_fields=(
                EventField("text", "$.event.text", DataType.TEXT, "The text of the posted message."),
                EventField("channel", "$.event.channel", DataType.STRING, "The ID of the channel it was posted in."),
                EventField("user", "$.event.user", DataType.STRING, "The ID of the user who posted it."),
                EventField("ts", "$.event.ts", DataType.STRING, "The message's timestamp, its ID within the channel."),
                EventField(
                    "thread_ts",
                    "$.event.thread_ts",
                    DataType.STRING,
                    "The parent message's ts when the message is a reply in a thread.",
                    optional=True,
                ),
                EventField("team_id", "$.team_id", DataType.STRING, "The ID of the Slack workspace (team)."),
            ),
            entity_id_field="ts",
            signature_scheme=SignatureScheme.SLACK_V0,
        ),
    ),
)


# --- Implementations ---------------------------------------------------------------------------------------------

SERVICE = "Slack"
# Error codes Slack documents as passing: worth a retry rather than a failed step.
TRANSIENT_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
# Slack recommends pages of at most 200 conversations.
PAGE_SIZE = 200


def _call(
    context: TaskContext, api_method: str, *, json: dict[str, Any] | None = None, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Calls a Web API method (POST with a JSON body, or GET with query parameters) and returns its ``ok`` answer."""
    token = str(context.require_credential().secrets.get("access_token") or "")
    if not token:
        raise TaskError("The Slack credential has no access token: connect Slack again.")
    headers = {"Authorization": f"Bearer {token}"}
    if json is not None:
        headers["Content-Type"] = "application/json; charset=utf-8"
    url = f"{base_url('NEENA_SLACK_BASE_URL', 'https://slack.com/api')}/{api_method}"
    method = "POST" if json is not None else "GET"
    # The setting or Slack's own address: the operator's choice, so trusted.
    response = request(SERVICE, method, url, headers=headers, json=json, params=params, trusted=True)
    return _ok_payload(response, api_method)


def _ok_payload(response: httpx.Response, api_method: str) -> dict[str, Any]:
    """The answer when ``ok``; otherwise Slack's error code as a TaskError (TransientTaskError when it passes)."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise TaskError(f"Slack {api_method} answered {response.status_code} without a JSON object.")
    if payload.get("ok") is True:
        return payload
    error = str(payload.get("error") or "unknown_error")
    if error in TRANSIENT_ERRORS:
        raise TransientTaskError(f"Slack {api_method} failed: {error}", retry_after=retry_after_seconds(response))
    details = [str(message) for message in (payload.get("response_metadata") or {}).get("messages") or []]
    if payload.get("needed"):
        details.append(f"needs the {payload['needed']} scope")
    suffix = f" ({'; '.join(details)})" if details else ""
    raise TaskError(f"Slack refused {api_method}: {error}{suffix}")


def _required(value: str, name: str) -> str:
    if not value.strip():
        raise TaskError(f"Slack needs a non-empty {name}.")
    return value


def post_message(context: TaskContext, *, channel: str, text: str) -> dict[str, Any]:
    """chat.postMessage; a channel given by name (``#support``) is passed as it is, which Slack accepts."""
    payload = _call(
        context,
        "chat.postMessage",
        json={"channel": _required(channel, "channel").strip(), "text": _required(text, "text")},
    )
    return {"channel": payload["channel"], "ts": payload["ts"]}


def reply_in_thread(context: TaskContext, *, channel: str, thread_ts: str, text: str) -> dict[str, Any]:
    """chat.postMessage with ``thread_ts``: the reply stays in the thread (not broadcast to the channel)."""
    message = {
        "channel": _required(channel, "channel").strip(),
        "thread_ts": _required(thread_ts, "thread_ts").strip(),
        "text": _required(text, "text"),
    }
    return {"ts": _call(context, "chat.postMessage", json=message)["ts"]}


def list_channels(context: TaskContext, *, limit: int = 100) -> dict[str, Any]:
    """conversations.list of the public, unarchived channels, following ``next_cursor`` until ``limit`` are found.

    Slack may answer a page with fewer channels than asked for while more remain, so the cursor decides when to stop.
    """
    if not 1 <= limit <= 1000:
        raise TaskError(f"List Slack Channels takes a limit from 1 to 1000, not {limit}.")
    channels: list[dict[str, Any]] = []
    cursor = ""
    seen_cursors: set[str] = set()
    while len(channels) < limit:
        params: dict[str, Any] = {
            "types": "public_channel",
            "exclude_archived": "true",
            "limit": min(PAGE_SIZE, limit - len(channels)),
        }
        if cursor:
            params["cursor"] = cursor
        payload = _call(context, "conversations.list", params=params)
        channels += [
            {
                "id": channel.get("id"),
                "name": channel.get("name"),
                "is_private": bool(channel.get("is_private")),
                "num_members": channel.get("num_members"),
            }
            for channel in payload.get("channels") or []
            if isinstance(channel, dict)
        ]
        cursor = str((payload.get("response_metadata") or {}).get("next_cursor") or "")
        if not cursor or cursor in seen_cursors:
            break
        seen_cursors.add(cursor)
    return {"channels": channels[:limit]}
