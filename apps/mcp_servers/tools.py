"""An MCP tool as a task definition, and a tool's answer as a step's outputs.

Parameters come from the tool's ``inputSchema`` (JSON Schema): each property's type, description, enum, default and
whether it is required. Outputs come from ``outputSchema`` when the tool declares one, else the answer's text.
``readOnlyHint: true`` is the only thing that makes a tool free of side effects: destructive, unknown or absent
annotations all count as a side effect, which the default approval policy parks for approval.
"""

import json
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from mcp.types import CallToolResult, TextContent, Tool

from apps.integrations.connectors.base import DataType, Param, RetryPolicy, TaskSpec

# The ``class_name`` of every MCP server's integration: the engine asks ``calling`` for their implementations.
CLASS_NAME = "McpServer"
# What a tool returns when it declares no outputSchema: its text content, joined.
TEXT_OUTPUT = Param("text", DataType.TEXT, "The tool's answer as text.")
# Task definitions keep a method name of at most this many characters (MCP allows 128).
MAX_TOOL_NAME = 100
TOOL_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")

_FORMATS = {"email": DataType.EMAIL, "uri": DataType.URL, "url": DataType.URL, "date-time": DataType.DATETIME}
_TYPES = {
    "integer": DataType.INT,
    "number": DataType.FLOAT,
    "boolean": DataType.BOOL,
    "array": DataType.LIST,
    "object": DataType.DICT,
}


@dataclass(frozen=True)
class ToolHints:
    """What the tool's annotations promise. A call that may have reached the server is repeated only when one of
    them says repeating does no harm."""

    read_only: bool
    idempotent: bool

    def as_json(self) -> dict[str, bool]:
        return {"read_only": self.read_only, "idempotent": self.idempotent}


def tool_hints(tool: Tool) -> ToolHints:
    annotations = tool.annotations
    read_only = bool(annotations and annotations.read_only_hint is True)
    idempotent = bool(annotations and annotations.idempotent_hint is True)
    return ToolHints(read_only=read_only, idempotent=read_only or idempotent)


def _data_type(schema: dict[str, Any]) -> DataType:
    """The DataType of a property: its ``type`` (the one that is not null, for ``["string", "null"]`` or an
    ``anyOf`` of a type and null), narrowed by ``format``; anything else (several types, $ref) is JSON."""
    kinds = schema.get("type")
    if kinds is None and isinstance(schema.get("anyOf"), list):
        kinds = [option.get("type") for option in schema["anyOf"] if isinstance(option, dict)]
    if isinstance(kinds, list):
        kinds = [kind for kind in kinds if kind != "null"]
        kinds = kinds[0] if len(kinds) == 1 else None
    if kinds == "string":
        return _FORMATS.get(str(schema.get("format", "")), DataType.STRING)
    return _TYPES.get(str(kinds), DataType.JSON)


def _doc(schema: dict[str, Any], name: str) -> str:
    text = str(schema.get("description") or schema.get("title") or name.replace("_", " ").capitalize())
    choices = schema.get("enum")
    if isinstance(choices, list) and choices:
        text += " One of: " + ", ".join(json.dumps(choice) for choice in choices[:50]) + "."
    return text[:2000]


def _params(schema: dict[str, Any] | None, *, all_required: bool = False) -> tuple[Param, ...]:
    properties = (schema or {}).get("properties")
    if not isinstance(properties, dict):
        return ()
    required = set((schema or {}).get("required") or ())
    params = []
    for name, prop in properties.items():
        prop = prop if isinstance(prop, dict) else {}
        optional = not all_required and name not in required
        params.append(Param(str(name), _data_type(prop), _doc(prop, str(name)), optional, prop.get("default")))
    return tuple(params)


def task_name_of(tool: Tool) -> str:
    """The tool's title (its own, or its annotations'), else its name in words: get_current_time, Get Current Time."""
    title = tool.title or (tool.annotations.title if tool.annotations else None)
    return (title or re.sub(r"[_.\-]+", " ", tool.name).strip().title() or tool.name)[:200]


def tool_task_spec(tool: Tool) -> TaskSpec:
    """The task definition of one tool."""
    hints = tool_hints(tool)
    outputs = _params(tool.output_schema, all_required=True) or (TEXT_OUTPUT,)
    return TaskSpec(
        task_name=task_name_of(tool),
        python_method_name=tool.name,
        description=(tool.description or task_name_of(tool))[:4000],
        parameters=_params(tool.input_schema),
        outputs=outputs,
        side_effect=not hints.read_only,
        retry=RetryPolicy(
            max_retries=settings.NEENA_MCP_MAX_RETRIES,
            backoff_seconds=1.0,
            time_limit_seconds=settings.NEENA_MCP_TIMEOUT_SECONDS,
        ),
    )


def _text(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def result_outputs(result: CallToolResult) -> dict[str, Any]:
    """A successful answer as the step's outputs: its structured content, else its text as ``text``."""
    if isinstance(result.structured_content, dict):
        return result.structured_content
    return {TEXT_OUTPUT.name: _text(result)}


def error_message(result: CallToolResult) -> str:
    """What a tool answering ``isError`` said, for the failed step."""
    return _text(result)[:2000] or "The tool reported an error without a message."
