"""The ``slack`` integration: post and reply to messages in channels, list channels, react to posted messages."""

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

# chat.postMessage takes no idempotency key: a retry after a lost response may post twice, so posts retry sparingly.
# Slack answers rate limits with 429 and Retry-After, which the retry honours.
POST_RETRY = RetryPolicy(max_retries=2, backoff_seconds=2.0, time_limit_seconds=30)
READ_RETRY = RetryPolicy(max_retries=5, backoff_seconds=1.0, time_limit_seconds=30)

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
            retry=POST_RETRY,
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
            retry=POST_RETRY,
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
            retry=READ_RETRY,
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
