"""``template_body`` placeholders: ``<{field}>`` names an event field; rendering is plain substitution.

Rendering never evaluates anything: each placeholder is replaced, in one pass, by its field's value as text, so a
value that itself contains ``<{other}>``, ``{{ steps.0.result }}``, quotes or braces is inserted exactly as it came.
The flow is planned from the template, not from the rendered text (``template_for_planning``): each placeholder
stands for its field in the request's metadata, so an event's content is data for the steps and never chooses them.
"""

import json
import re
from collections.abc import Mapping
from typing import Any

PLACEHOLDER = re.compile(r"<\{([^{}<>]*)\}>")
# A field name a binding can name as ``request.metadata.<name>`` (``apps.flows.bindings``).
BINDABLE_NAME = re.compile(r"^[\w-]+$")


def placeholder_names(template_body: str) -> list[str]:
    """The field names the template uses, in order of first appearance."""
    return list(dict.fromkeys(name.strip() for name in PLACEHOLDER.findall(template_body)))


def value_as_text(value: Any) -> str:
    """How an event value reads inside instructions: text as is, anything else as its JSON; a missing one is empty."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def template_render(template_body: str, values: Mapping[str, Any]) -> str:
    """The template with every ``<{field}>`` replaced by ``value_as_text(values.get(field))``.

    ``re.sub`` scans the template once and never rescans what it inserted, which is what keeps values literal.
    """
    return PLACEHOLDER.sub(lambda match: value_as_text(values.get(match.group(1).strip())), template_body)


def template_for_planning(template_body: str) -> str:
    """The template as the planner reads it: each ``<{field}>`` becomes ``{{ request.metadata.<field> }}``, which a
    planned step then reads as a binding (the event fields are the request's metadata), or the bare field name when
    no binding can name it."""

    def reference(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        return f"{{{{ request.metadata.{name} }}}}" if BINDABLE_NAME.match(name) else name

    return PLACEHOLDER.sub(reference, template_body)
