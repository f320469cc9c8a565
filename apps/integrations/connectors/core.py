"""The ``core`` integration: text and data steps that need no account and no network."""

from apps.integrations.connectors.base import AuthType, ConnectorSpec, DataType, Param, TaskSpec

CONNECTOR = ConnectorSpec(
    name="Core",
    short_name="core",
    class_name="CoreIntegration",
    auth_type=AuthType.NONE,
    description="Built-in steps: format, extract, classify and summarise text, notify people, set the flow's result.",
    tasks=(
        TaskSpec(
            task_name="Format Text",
            python_method_name="format_text",
            description="Fill a text template's {name} fields with values, e.g. to compose a message or a reply.",
            parameters=(
                Param("template", DataType.TEXT, "Text with {name} placeholders, e.g. 'Hello {customer}'."),
                Param("values", DataType.DICT, "The value for each placeholder name.", optional=True, default={}),
            ),
            outputs=(Param("text", DataType.TEXT, "The template with every placeholder filled in."),),
        ),
        TaskSpec(
            task_name="Extract Field",
            python_method_name="extract_field",
            description="Pick one value out of structured data by its path, e.g. 'ticket.requester.email'.",
            parameters=(
                Param("data", DataType.JSON, "The structured data (object or list) to read from."),
                Param("path", DataType.STRING, "Dot-separated keys and list indices, e.g. 'items.0.id'."),
            ),
            outputs=(Param("value", DataType.JSON, "The value found at the path."),),
        ),
        TaskSpec(
            task_name="Classify Text",
            python_method_name="classify_text",
            description="Label a text with one of the given categories, e.g. tag a ticket as billing or bug report.",
            parameters=(
                Param("text", DataType.TEXT, "The text to classify."),
                Param("labels", DataType.LIST, "The candidate labels."),
                Param(
                    "keywords",
                    DataType.DICT,
                    "Optional keywords per label that count as evidence for it.",
                    optional=True,
                    default={},
                ),
            ),
            outputs=(Param("label", DataType.STRING, "The best-scoring label."),),
        ),
        TaskSpec(
            task_name="Summarize Text",
            python_method_name="summarize_text",
            description="Shorten a text to its most informative sentences, e.g. summarise a long ticket or mail.",
            parameters=(
                Param("text", DataType.TEXT, "The text to summarise."),
                Param("max_sentences", DataType.INT, "How many sentences to keep.", optional=True, default=3),
            ),
            outputs=(Param("summary", DataType.TEXT, "The summary."),),
        ),
        TaskSpec(
            task_name="Send Notification",
            python_method_name="send_notification",
            description="Notify a person with a message; the notification is recorded and visible in the admin.",
            parameters=(
                Param("recipient", DataType.STRING, "Who to notify: an email address or a name."),
                Param("message", DataType.TEXT, "The notification text."),
            ),
            outputs=(Param("notification_id", DataType.STRING, "The id of the recorded notification."),),
            side_effect=True,
        ),
        TaskSpec(
            task_name="Set Flow Result",
            python_method_name="set_flow_result",
            description="Record the flow's result text, e.g. the final reply kept for a ticket or mail.",
            parameters=(Param("body", DataType.TEXT, "The result text."),),
            outputs=(Param("body", DataType.TEXT, "The recorded result text."),),
        ),
    ),
)
