"""The ``core`` integration: text and data steps that need no account and no network."""

import json
import re
from typing import Any

from apps.integrations.connectors.base import AuthType, ConnectorSpec, DataType, Param, TaskSpec
from apps.integrations.execution import TaskContext, TaskError
from apps.integrations.llm import ModelAnswerError, ModelUnavailableError, chat_json
from apps.integrations.llm import configured as llm_configured
from apps.integrations.models import Notification
from apps.integrations.text_analysis import classify, summarize
from apps.runs.services.results import flow_result_record

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


# --- Implementations ---------------------------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def format_text(context: TaskContext, *, template: str, values: dict[str, Any]) -> dict[str, Any]:
    """Plain substitution of ``{name}`` fields (``{{`` and ``}}`` are literal braces); nothing is evaluated."""
    missing = sorted({name for name in PLACEHOLDER.findall(template) if name and name not in values})
    if missing:
        raise TaskError(f"Format Text has no value for {', '.join('{' + name + '}' for name in missing)}.")

    def replace(match: re.Match[str]) -> str:
        if match.group(0) in ("{{", "}}"):
            return match.group(0)[0]
        value = values[match.group(1)]
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    return {"text": PLACEHOLDER.sub(replace, template)}


def extract_field(context: TaskContext, *, data: Any, path: str) -> dict[str, Any]:
    """Follows dot-separated keys and list indices through the data."""
    value = data
    for part in (part for part in path.split(".") if part):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            raise TaskError(f"Extract Field found nothing at '{part}' of the path '{path}'.")
    return {"value": value}


def _ask_model(instruction: str, text: str) -> dict[str, Any] | None:
    """The configured model's JSON answer, or None when no model is configured or it cannot help (then the
    model-free method answers instead)."""
    if not llm_configured():
        return None
    try:
        answer, _ = chat_json([{"role": "system", "content": instruction}, {"role": "user", "content": text}])
    except (ModelUnavailableError, ModelAnswerError):
        return None
    return answer


def classify_text(context: TaskContext, *, text: str, labels: list[Any], keywords: dict[str, Any]) -> dict[str, Any]:
    """The model's label when a model is configured (and its answer is one of the labels), else keyword scoring."""
    label_names = [str(label) for label in labels]
    if not label_names:
        raise TaskError("Classify Text needs at least one label.")
    answer = _ask_model(
        f"Classify the user's text as exactly one of these labels: {json.dumps(label_names)}. "
        'Answer with a JSON object {"label": "<one of the labels>"}.',
        text,
    )
    if answer and answer.get("label") in label_names:
        return {"label": answer["label"]}
    keyword_lists = {str(label): value if isinstance(value, list) else [value] for label, value in keywords.items()}
    return {"label": classify(text, label_names, keyword_lists)}


def summarize_text(context: TaskContext, *, text: str, max_sentences: int) -> dict[str, Any]:
    """The model's summary when a model is configured, else an extractive one."""
    if max_sentences < 1:
        raise TaskError("Summarize Text needs max_sentences of at least 1.")
    answer = _ask_model(
        f"Summarise the user's text in at most {max_sentences} sentences. "
        'Answer with a JSON object {"summary": "<the summary>"}.',
        text,
    )
    if answer and isinstance(answer.get("summary"), str) and answer["summary"].strip():
        return {"summary": answer["summary"].strip()}
    return {"summary": summarize(text, max_sentences)}


def send_notification(context: TaskContext, *, recipient: str, message: str) -> dict[str, Any]:
    """Records the notification once per step, whatever the number of deliveries of the job."""
    notification, _ = Notification.objects.get_or_create(
        idempotency_key=context.idempotency_key,
        defaults={
            "organization_id": context.organization_id,
            "flow_run_id": context.flow_run_id,
            "recipient": recipient,
            "message": message,
        },
    )
    return {"notification_id": str(notification.id)}


def set_flow_result(context: TaskContext, *, body: str) -> dict[str, Any]:
    flow_result_record(flow_run_id=context.flow_run_id, body=body, task_run_id=context.task_run_id)
    return {"body": body}
