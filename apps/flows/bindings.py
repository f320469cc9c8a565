"""Explicit parameter bindings: literals, or templates naming where a value comes from.

A template is text with ``{{ reference }}`` parts, where a reference is ``steps.N.result[.field...]`` (the result of
step N, which must run before), ``request.metadata[.key...]`` or ``request.instructions``. Templates are resolved by
lookup when a step is prepared; nothing in them is ever evaluated.
"""

import re
from dataclasses import dataclass

TEMPLATE_PART = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
STEP_REFERENCE = re.compile(r"^steps\.(\d+)\.result(\.[\w-]+)*$")
REQUEST_REFERENCE = re.compile(r"^request\.(instructions|metadata(\.[\w-]+)*)$")


@dataclass(frozen=True)
class Reference:
    """One ``{{ ... }}`` part: its text, the step it reads from (None for request references) and, for a step, the
    path into its result (``("ticket_id",)`` for ``steps.0.result.ticket_id``; empty for the whole result)."""

    text: str
    step: int | None
    result_path: tuple[str, ...] = ()


def is_template(value: object) -> bool:
    return isinstance(value, str) and "{{" in value


def template_references(value: str) -> list[Reference]:
    """The references of a template; raises ValueError naming the first one that is not a known form."""
    references = []
    for text in TEMPLATE_PART.findall(value):
        step_match = STEP_REFERENCE.match(text)
        if step_match:
            path = tuple(text.split(".")[3:])
            references.append(Reference(text=text, step=int(step_match.group(1)), result_path=path))
        elif REQUEST_REFERENCE.match(text):
            references.append(Reference(text=text, step=None))
        else:
            raise ValueError(
                f"'{{{{ {text} }}}}' is not a known reference; use steps.N.result.field, request.metadata.key "
                "or request.instructions."
            )
    return references
