"""The ``zendesk`` integration: read, reply to, annotate and update support tickets; react to new tickets."""

from apps.integrations.connectors.base import (
    AuthType,
    ConnectorSpec,
    DataType,
    EventField,
    Param,
    RetryPolicy,
    SignatureScheme,
    TaskSpec,
    TriggerSpec,
)

# Adding a comment takes no idempotency key: a retry after a lost response may comment twice, so it retries sparingly.
# Reads, and setting a ticket's status and tags, are idempotent and safe to repeat.
COMMENT_RETRY = RetryPolicy(max_retries=2, backoff_seconds=2.0, time_limit_seconds=30)
IDEMPOTENT_RETRY = RetryPolicy(max_retries=5, backoff_seconds=1.0, time_limit_seconds=30)

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
            retry=IDEMPOTENT_RETRY,
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
            retry=COMMENT_RETRY,
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
            retry=COMMENT_RETRY,
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
            retry=IDEMPOTENT_RETRY,
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
