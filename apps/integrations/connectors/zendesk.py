"""The ``zendesk`` integration: read, reply to, annotate and update support tickets; react to new tickets.

Credential (API key auth): ``secrets["api_key"]`` is an agent's Zendesk API token, ``config["email"]`` that agent's
email address and ``config["subdomain"]`` the account's subdomain (``acme`` for acme.zendesk.com). Calls go to
``https://{subdomain}.zendesk.com/api/v2`` (or NEENA_ZENDESK_BASE_URL when set, as in tests) with Basic
authentication ``{email}/token:{api_token}``. The subdomain is the user's, so the address its name resolves to must be
public (the egress guard checks it when connecting); the setting is the operator's, and may point anywhere.

Zendesk honours an ``Idempotency-Key`` only when creating tickets, which this connector does not do; ticket updates
(comments, status, tags) accept none, so ``context.idempotency_key`` is not sent. A comment is therefore a side effect
retried sparingly (``UNREPEATABLE_RETRY``): a retry after a lost answer may add it twice. 429 (with its Retry-After) and
5xx answers are retried; other refusals fail the step with Zendesk's message.

Update Zendesk Ticket's ``tags`` replace the ticket's whole tag list, as Zendesk's ``tags`` field does.
"""

import re
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

from apps.integrations.connectors.base import (
    REPEATABLE_RETRY,
    UNREPEATABLE_RETRY,
    AuthType,
    ConnectorSpec,
    DataType,
    EventField,
    Param,
    SignatureScheme,
    TaskSpec,
    TriggerSpec,
)
from apps.integrations.execution import TaskContext, TaskError
from apps.integrations.http import base_url, request

# Adding a comment takes no idempotency key: a retry after a lost response may comment twice, so it retries sparingly.
# Reads, and setting a ticket's status and tags, are idempotent and safe to repeat.

CONNECTOR = ConnectorSpec(
    name="Zendesk",
    short_name="zendesk",
    class_name="ZendeskIntegration",
    auth_type=AuthType.API_KEY,
    description="Zendesk Support tickets: get a ticket, add a public reply or an internal note, update status and "
    "tags, and start flows when a ticket is created. Authenticates with an agent email, API token and subdomain.",
    base_url_setting="NEENA_ZENDESK_BASE_URL",
    tasks=(
        TaskSpec(
            task_name="Get Zendesk Ticket",
            python_method_name="get_ticket",
            description="Get, read or fetch a Zendesk ticket by its ID: subject, description, status, requester, tags.",
            parameters=(Param("ticket_id", DataType.INT, "The ticket's ID (the number shown as #123 in Zendesk)."),),
            outputs=(
                Param("ticket_id", DataType.INT, "The ticket's ID."),
                Param("subject", DataType.STRING, "The ticket's subject line."),
                Param("description", DataType.TEXT, "The ticket's first comment, as the requester wrote it."),
                Param("status", DataType.STRING, "new, open, pending, hold, solved or closed."),
                Param("requester_email", DataType.EMAIL, "The email address of the person who asked for support."),
                Param("tags", DataType.LIST, "The ticket's tags."),
            ),
            retry=REPEATABLE_RETRY,
        ),
        TaskSpec(
            task_name="Add Zendesk Public Reply",
            python_method_name="add_public_reply",
            description="Reply to a Zendesk ticket with a public comment that is sent to the requester.",
            parameters=(
                Param("ticket_id", DataType.INT, "The ID of the ticket to reply to."),
                Param("body", DataType.TEXT, "The reply text the requester will see."),
            ),
            outputs=(
                Param("ticket_id", DataType.INT, "The ID of the updated ticket."),
                Param("audit_id", DataType.INT, "The ID of the audit recording the new comment."),
            ),
            side_effect=True,
            retry=UNREPEATABLE_RETRY,
        ),
        TaskSpec(
            task_name="Add Zendesk Internal Note",
            python_method_name="add_internal_note",
            description="Add a private internal note to a Zendesk ticket, visible only to agents, not the requester.",
            parameters=(
                Param("ticket_id", DataType.INT, "The ID of the ticket to annotate."),
                Param("body", DataType.TEXT, "The note text, e.g. a summary or a suggested answer for agents."),
            ),
            outputs=(
                Param("ticket_id", DataType.INT, "The ID of the updated ticket."),
                Param("audit_id", DataType.INT, "The ID of the audit recording the note."),
            ),
            side_effect=True,
            retry=UNREPEATABLE_RETRY,
        ),
        TaskSpec(
            task_name="Update Zendesk Ticket",
            python_method_name="update_ticket",
            description="Update a Zendesk ticket's status or tags, e.g. mark it solved or tag it as billing.",
            parameters=(
                Param("ticket_id", DataType.INT, "The ID of the ticket to update."),
                Param(
                    "status",
                    DataType.STRING,
                    "The new status: new, open, pending, hold, solved or closed; left unchanged when empty.",
                    optional=True,
                ),
                Param(
                    "tags",
                    DataType.LIST,
                    "The tags to set, replacing the ticket's current tags; left unchanged when empty.",
                    optional=True,
                ),
            ),
            outputs=(
                Param("ticket_id", DataType.INT, "The ID of the updated ticket."),
                Param("status", DataType.STRING, "The ticket's status after the update."),
                Param("tags", DataType.LIST, "The ticket's tags after the update."),
            ),
            side_effect=True,
            retry=REPEATABLE_RETRY,
        ),
    ),
    triggers=(
        TriggerSpec(
            trigger_name="Zendesk Ticket Created",
            python_method_name="ticket_created",
            description="Start a flow when a new Zendesk ticket is created, e.g. to triage it or draft a reply.",
            event_fields=(
                EventField("ticket_id", "$.ticket.id", DataType.INT, "The new ticket's ID."),
                EventField("subject", "$.ticket.subject", DataType.STRING, "The ticket's subject line."),
                EventField("description", "$.ticket.description", DataType.TEXT, "The requester's first message."),
                EventField(
                    "requester_email",
                    "$.ticket.requester.email",
                    DataType.EMAIL,
                    "The email address of the person asking for support.",
                ),
                EventField(
                    "requester_name",
                    "$.ticket.requester.name",
                    DataType.STRING,
                    "The requester's name.",
                    optional=True,
                ),
                EventField(
                    "priority",
                    "$.ticket.priority",
                    DataType.STRING,
                    "urgent, high, normal or low, when set.",
                    optional=True,
                ),
                EventField(
                    "status",
                    "$.ticket.status",
                    DataType.STRING,
                    "The ticket's status, usually new.",
                    optional=True,
                ),
            ),
            entity_id_field="ticket_id",
            signature_scheme=SignatureScheme.ZENDESK,
        ),
    ),
)


# --- Implementations ---------------------------------------------------------------------------------------------

SERVICE = "Zendesk"
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
SUBDOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class ZendeskAccount:
    """Where and as whom to call: the API's base URL, the Basic credentials of the agent's API token, and whether the
    base URL is the operator's setting (trusted) rather than built from the credential's subdomain."""

    base_url: str
    auth: tuple[str, str]
    operator_set: bool

    def ticket_url(self, ticket_id: int) -> str:
        if ticket_id < 1:
            raise TaskError(f"{ticket_id} is not a Zendesk ticket ID: IDs are positive numbers.")
        return f"{self.base_url}/tickets/{ticket_id}.json"


def _account(context: TaskContext) -> ZendeskAccount:
    """The account from the step's credential: API token, agent email and subdomain (the base URL setting, when set,
    takes the subdomain's place)."""
    credential = context.require_credential()
    api_token = str(credential.secrets.get("api_key") or "")
    email = str(credential.config.get("email") or "").strip()
    if not api_token:
        raise TaskError("The Zendesk credential has no API token: store it as its api_key.")
    if not email:
        raise TaskError(
            "The Zendesk credential's config has no 'email': give the agent email the API token belongs to."
        )
    subdomain = str(credential.config.get("subdomain") or "").strip().lower().removesuffix(".zendesk.com")
    if subdomain and not SUBDOMAIN.match(subdomain):
        raise TaskError(f"The Zendesk credential's subdomain {subdomain!r} is not a Zendesk subdomain, e.g. 'acme'.")
    fallback = f"https://{subdomain}.zendesk.com/api/v2" if subdomain else ""
    return ZendeskAccount(
        base_url("NEENA_ZENDESK_BASE_URL", fallback),
        (f"{email}/token", api_token),
        operator_set=bool(settings.NEENA_ZENDESK_BASE_URL),
    )


def _payload(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, with the ``ticket`` every ticket endpoint returns."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict) or not isinstance(payload.get("ticket"), dict):
        raise TaskError(f"Zendesk answered {response.status_code} without a ticket: {response.text[:200]}")
    return payload


def _update(context: TaskContext, ticket_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    """PUT /tickets/{id}.json: the answer holds the updated ticket and the audit recording the change."""
    account = _account(context)
    response = request(
        SERVICE,
        "PUT",
        account.ticket_url(ticket_id),
        json={"ticket": changes},
        auth=account.auth,
        trusted=account.operator_set,
    )
    return _payload(response)


def _comment(context: TaskContext, ticket_id: int, body: str, *, public: bool) -> dict[str, Any]:
    if not body.strip():
        raise TaskError("A Zendesk comment needs a non-empty body.")
    payload = _update(context, ticket_id, {"comment": {"body": body, "public": public}})
    audit = payload.get("audit")
    return {
        "ticket_id": payload["ticket"].get("id", ticket_id),
        "audit_id": audit.get("id") if isinstance(audit, dict) else None,
    }


def get_ticket(context: TaskContext, *, ticket_id: int) -> dict[str, Any]:
    """GET /tickets/{id}.json?include=users: the ticket, with its requester sideloaded for the email address.

    ``requester_email`` is empty when the requester has none (a caller known only by phone, say).
    """
    account = _account(context)
    response = request(
        SERVICE,
        "GET",
        account.ticket_url(ticket_id),
        params={"include": "users"},
        auth=account.auth,
        trusted=account.operator_set,
    )
    payload = _payload(response)
    ticket = payload["ticket"]
    users = {user.get("id"): user for user in payload.get("users") or [] if isinstance(user, dict)}
    requester = users.get(ticket.get("requester_id")) or {}
    return {
        "ticket_id": ticket.get("id", ticket_id),
        "subject": ticket.get("subject") or "",
        "description": ticket.get("description") or "",
        "status": ticket.get("status") or "",
        "requester_email": requester.get("email") or "",
        "tags": list(ticket.get("tags") or []),
    }


def add_public_reply(context: TaskContext, *, ticket_id: int, body: str) -> dict[str, Any]:
    """Adds a public comment, which Zendesk sends to the requester (a new ticket becomes open)."""
    return _comment(context, ticket_id, body, public=True)


def add_internal_note(context: TaskContext, *, ticket_id: int, body: str) -> dict[str, Any]:
    """Adds a private comment, visible to agents only."""
    return _comment(context, ticket_id, body, public=False)


def update_ticket(
    context: TaskContext, *, ticket_id: int, status: str | None = None, tags: list[Any] | None = None
) -> dict[str, Any]:
    """Sets the status and/or the tags; an empty status or tag list leaves that field as it is.

    ``tags`` replaces the ticket's whole tag list (Zendesk's ``tags`` field): tags not given are removed.
    """
    changes: dict[str, Any] = {}
    new_status = (status or "").strip().lower()
    if new_status:
        if new_status not in STATUSES:
            raise TaskError(f"'{status}' is not a Zendesk ticket status: use one of {', '.join(STATUSES)}.")
        changes["status"] = new_status
    new_tags = [str(tag).strip() for tag in tags or [] if str(tag).strip()]
    if new_tags:
        changes["tags"] = new_tags
    if not changes:
        raise TaskError("Update Zendesk Ticket needs a status or tags to set.")
    ticket = _update(context, ticket_id, changes)["ticket"]
    return {
        "ticket_id": ticket.get("id", ticket_id),
        "status": ticket.get("status") or "",
        "tags": list(ticket.get("tags") or []),
    }
