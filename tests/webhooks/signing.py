"""Signing deliveries the way each integration does, and creating operations through the API, for the tests."""

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook

from tests.factories import trigger_definition

ZENDESK_TICKET_CREATED = "Zendesk Ticket Created"
SLACK_MESSAGE_POSTED = "Slack Message Posted"
GITHUB_ISSUE_OPENED = "GitHub Issue Opened"
GENERIC_EVENT = "Generic Event Received"
GMAIL_MESSAGE_RECEIVED = "Gmail Message Received"
# A secret that is not any operation's, in a form every scheme accepts (Standard Webhooks needs whsec_<base64>).
WRONG_SECRET = "whsec_" + base64.b64encode(b"not the operation's secret").decode()


def _digest(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def body_of(payload: Any) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def slack_headers(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    sent_at = str(int(time.time()) if timestamp is None else timestamp)
    signature = "v0=" + _digest(secret, f"v0:{sent_at}:".encode() + body).hex()
    return {"X-Slack-Signature": signature, "X-Slack-Request-Timestamp": sent_at}


def github_headers(secret: str, body: bytes, *, delivery: str | None = None) -> dict[str, str]:
    return {
        "X-Hub-Signature-256": "sha256=" + _digest(secret, body).hex(),
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Event": "issues",
    }


def zendesk_headers(secret: str, body: bytes, *, timestamp: str | None = None) -> dict[str, str]:
    """Zendesk's headers; the timestamp (ISO 8601, as Zendesk sends it) defaults to now."""
    if timestamp is None:
        timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    signature = base64.b64encode(_digest(secret, timestamp.encode() + body)).decode()
    return {"X-Zendesk-Webhook-Signature": signature, "X-Zendesk-Webhook-Signature-Timestamp": timestamp}


def standard_headers(
    secret: str, body: bytes, *, delivery: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    """Standard Webhooks headers, signed by the ``standardwebhooks`` package as a sender would sign them."""
    msg_id = delivery or f"msg_{uuid.uuid4().hex}"
    sent_at = int(time.time()) if timestamp is None else timestamp
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(sent_at, tz=UTC), body)
    return {"webhook-id": msg_id, "webhook-timestamp": str(sent_at), "webhook-signature": signature}


SIGNERS = {
    ZENDESK_TICKET_CREATED: zendesk_headers,
    SLACK_MESSAGE_POSTED: slack_headers,
    GITHUB_ISSUE_OPENED: github_headers,
    GENERIC_EVENT: standard_headers,
    GMAIL_MESSAGE_RECEIVED: standard_headers,
}

TEMPLATES = {
    ZENDESK_TICKET_CREATED: "Summarize the ticket description and reply to the ticket with the summary.",
    SLACK_MESSAGE_POSTED: "Summarize the message <{text}> and post the summary to channel <{channel}>.",
    GITHUB_ISSUE_OPENED: "Summarize issue <{issue_number}> of <{repo}>: <{title}>.",
    GENERIC_EVENT: "Summarize <{text}> about <{entity_id}>.",
    GMAIL_MESSAGE_RECEIVED: "Summarize the mail <{subject}> from <{from_address}>.",
}


def zendesk_ticket_created(ticket_id: int = 4242, **ticket: Any) -> dict[str, Any]:
    """A "ticket created" event as a Zendesk webhook sends it (the body is the webhook's JSON template)."""
    body = {
        "id": ticket_id,
        "subject": "Charged twice",
        "description": "I was charged twice for my order. Please refund the second charge.",
        "priority": "high",
        "status": "new",
        "requester": {"email": "ann@example.com", "name": "Ann"},
        **ticket,
    }
    return {"type": "zendesk:ticket_created", "ticket": body}


def slack_message(text: str = "The build is broken again", ts: str = "1700000000.000100") -> dict[str, Any]:
    return {
        "type": "event_callback",
        "team_id": "T0001",
        "event_id": f"Ev{ts}",
        "event": {"type": "message", "text": text, "channel": "C0001", "user": "U0001", "ts": ts},
    }


def github_issue_opened(number: int = 7) -> dict[str, Any]:
    return {
        "action": "opened",
        "issue": {"number": number, "title": "Crash on start", "body": "It crashes."},
        "repository": {"full_name": "acme/app"},
        "sender": {"login": "octocat"},
    }


def generic_event(entity_id: str = "order-1", **extra: Any) -> dict[str, Any]:
    return {"entity_id": entity_id, "event_type": "order.created", "text": "A new order", **extra}


def gmail_message() -> dict[str, Any]:
    return {"message": {"id": "m1", "thread_id": "t1", "from": "bob@example.com", "subject": "Invoice", "body": "Hi"}}


PAYLOADS = {
    ZENDESK_TICKET_CREATED: zendesk_ticket_created,
    SLACK_MESSAGE_POSTED: slack_message,
    GITHUB_ISSUE_OPENED: github_issue_opened,
    GENERIC_EVENT: generic_event,
    GMAIL_MESSAGE_RECEIVED: gmail_message,
}


def create_operation(api, trigger_name: str = ZENDESK_TICKET_CREATED, **overrides: Any) -> dict[str, Any]:
    """An operation made through the API (active unless told otherwise); the answer carries its signing secret."""
    body = {
        "name": f"On {trigger_name}",
        "webhook_trigger_definition": str(trigger_definition(trigger_name).id),
        "template_body": TEMPLATES[trigger_name],
        "status": "active",
        **overrides,
    }
    response = api.post("/api/v1/webhook_trigger_operations/", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def deliver(
    client,
    operation: dict[str, Any],
    payload: Any,
    *,
    trigger_name: str = ZENDESK_TICKET_CREATED,
    headers: dict[str, str] | None = None,
    secret: str | None = None,
):
    """POSTs the payload to the operation's inbound path without any API token, signed as the trigger's integration
    signs (with ``secret``, else the operation's own), unless ``headers`` are given."""
    body = body_of(payload)
    if headers is None:
        headers = SIGNERS[trigger_name](secret or operation["signing_secret"], body)
    meta = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
    return client.generic("POST", f"/api/v1/webhooks/{operation['id']}/", body, content_type="application/json", **meta)
