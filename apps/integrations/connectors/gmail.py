"""The ``gmail`` integration: send, read, reply to and search mail; react to received messages."""

from apps.integrations.connectors.base import (
    AuthType,
    ConnectorSpec,
    DataType,
    EventField,
    OAuth2Spec,
    Param,
    RetryPolicy,
    SignatureScheme,
    TaskSpec,
    TriggerSpec,
)

# users.messages.send takes no idempotency key: a retry after a lost response may send twice, so sends retry sparingly.
SEND_RETRY = RetryPolicy(max_retries=2, backoff_seconds=2.0, time_limit_seconds=30)
READ_RETRY = RetryPolicy(max_retries=5, backoff_seconds=1.0, time_limit_seconds=30)

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
            retry=SEND_RETRY,
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
            retry=READ_RETRY,
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
            retry=SEND_RETRY,
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
            retry=READ_RETRY,
        ),
    ),
    triggers=(
        TriggerSpec(
            trigger_name="Gmail Message Received",
            python_method_name="message_received",
            description="Start a flow when a message arrives in the Gmail inbox, as posted by Neena's mail relay.",
            event_fields=(
                EventField("message_id", "$.message.id", DataType.STRING, "The Gmail ID of the received message."),
                EventField("thread_id", "$.message.thread_id", DataType.STRING, "The Gmail ID of its thread."),
                EventField("from_address", "$.message.from", DataType.EMAIL, "The sender's email address."),
                EventField("subject", "$.message.subject", DataType.STRING, "The message's subject line."),
                EventField("body", "$.message.body", DataType.TEXT, "The message's plain-text body.", optional=True),
            ),
            entity_id_field="message_id",
            signature_scheme=SignatureScheme.NEENA_HMAC,
        ),
    ),
)
