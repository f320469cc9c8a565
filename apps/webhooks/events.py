"""Event fields: values taken from a delivery's payload by the trigger definition's JSON paths, coerced to their
declared data_type (the same coercion task parameters get)."""

from functools import lru_cache
from typing import Any

import jsonpath

from apps.integrations.datatypes import coerce


class EventFieldError(Exception):
    """A required field is missing, a value does not fit its data_type, or a declared path is not valid JSONPath;
    the message says which field and why."""


class EventPathError(EventFieldError):
    """A declared JSON path is not valid: the trigger definition's fault, whatever the event holds."""


@lru_cache(maxsize=256)
def _compiled(json_path: str) -> jsonpath.JSONPath | jsonpath.CompoundJSONPath:
    return jsonpath.compile(json_path)


def _found(json_path: str, payload: Any) -> list[Any]:
    """Every non-null value at the path (RFC 9535 JSONPath, so ``$.ticket.id`` and ``$.items[0].name`` work)."""
    try:
        return [value for value in _compiled(json_path).findall(payload) if value is not None]
    except jsonpath.JSONPathError as error:
        raise EventPathError(f"The definition's JSON path {json_path!r} is not valid: {error}") from None


def event_fields_extract(*, event_fields: list[dict[str, Any]], payload: Any) -> dict[str, Any]:
    """The event's field values by name, each coerced to its data_type; optional fields not in the payload (or
    null) are left out.

    Raises EventFieldError for a missing required field or a value that does not fit its type. A path matching
    several values gives the list of them.
    """
    values: dict[str, Any] = {}
    for field in event_fields:
        name, json_path = field["name"], field["json_path"]
        found = _found(json_path, payload)
        if not found:
            if field.get("optional"):
                continue
            raise EventFieldError(f"The required event field '{name}' ({json_path}) is not in the payload.")
        value = found[0] if len(found) == 1 else found
        try:
            values[name] = coerce(value, field["data_type"])
        except ValueError as error:
            raise EventFieldError(f"The event field '{name}' ({json_path}): {error}.") from None
    return values
