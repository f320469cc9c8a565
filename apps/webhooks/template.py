"""``template_body`` placeholders: ``<{field}>`` names an event field; rendering is plain substitution.

Rendering never evaluates anything: each placeholder is replaced, in one pass, by its field's value as text, so a
value that itself contains ``<{other}>``, ``{{ steps.0.result }}``, quotes or braces is inserted exactly as it came.
"""

import json
import re
from collections.abc import Mapping
from typing import Any

PLACEHOLDER = re.compile(r"<\{([^{}<>]*)\}>")


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
