"""``template_body`` placeholders: ``<{field}>`` names an event field; rendering is plain substitution.

Rendering never evaluates anything: each placeholder is replaced, in one pass, by its field's value as text, so a
value that itself contains ``<{other}>``, ``{{ steps.0.result }}``, quotes or braces is inserted exactly as it came.
The flow is planned from the template, not from the rendered text (``template_for_planning``): a placeholder whose
value is free text stands for its field in the request's metadata, so an event's words are data for the steps and
never choose them; a plain value (an id, a number, an e-mail address, a URL) is planned from as it is.
"""

import json
import re
from collections.abc import Mapping
from typing import Any

PLACEHOLDER = re.compile(r"<\{([^{}<>]*)\}>")
# A field name a binding can name as ``request.metadata.<name>`` (``apps.flows.bindings``).
BINDABLE_NAME = re.compile(r"^[\w-]+$")
# A value the planner may read as it is: one token of plain characters with a digit or one of @ : / # in it (an id,
# a number, an e-mail address, a URL, a #channel). No spaces, quotes or braces: it cannot read as an instruction,
# name a task or write a binding.
PLAIN_VALUE = re.compile(r"^(?=.*[\d@:/#])[\w.@+#:/%=?&-]{1,200}$")


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


def template_for_planning(template_body: str, values: Mapping[str, Any], *, plain_values: bool = True) -> str:
    """The template as the planner reads it: each ``<{field}>`` becomes its value when that is plain (``PLAIN_VALUE``)
    or empty, else ``{{ request.metadata.<field> }}``, which a planned step then reads as a binding (the event fields
    are the request's metadata), or the bare field name when no binding can name it.

    With ``plain_values=False`` plain values too become references: what is left is the template with nothing of the
    event's own in it but which fields it has, which tells a template that cannot be planned from an event whose
    values cannot be."""

    def reference(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        text = value_as_text(values.get(name))
        if text == "" or (plain_values and PLAIN_VALUE.match(text)):
            return text
        return f"{{{{ request.metadata.{name} }}}}" if BINDABLE_NAME.match(name) else name

    return PLACEHOLDER.sub(reference, template_body)
