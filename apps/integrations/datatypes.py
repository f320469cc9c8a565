"""Checking and coercing values to a declared data_type (parameters, outputs, event fields)."""

import json
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator, validate_email

from apps.integrations.connectors.base import DataType

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("expected a boolean")


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value.strip())
    raise ValueError("expected an integer")


def _as_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ValueError("expected a number") from None
    if result != result or result in (float("inf"), float("-inf")):
        raise ValueError("expected a finite number")
    return result


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    raise ValueError("expected text")


def _as_email(value: Any) -> str:
    text = _as_text(value).strip()
    try:
        validate_email(text)
    except DjangoValidationError:
        raise ValueError("expected an email address") from None
    return text


def _as_url(value: Any) -> str:
    text = _as_text(value).strip()
    try:
        URLValidator(schemes=["http", "https"])(text)
    except DjangoValidationError:
        raise ValueError("expected an http(s) URL") from None
    return text


def _parsed_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _as_list(value: Any) -> list[Any]:
    value = _parsed_json(value)
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    raise ValueError("expected a list")


def _as_dict(value: Any) -> dict[str, Any]:
    value = _parsed_json(value)
    if isinstance(value, dict):
        return value
    raise ValueError("expected an object")


def _as_datetime(value: Any) -> str:
    text = _as_text(value).strip()
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("expected an ISO 8601 date-time") from None
    return text


_COERCERS = {
    DataType.STRING: _as_text,
    DataType.TEXT: _as_text,
    DataType.INT: _as_int,
    DataType.FLOAT: _as_float,
    DataType.BOOL: _as_bool,
    DataType.EMAIL: _as_email,
    DataType.URL: _as_url,
    DataType.LIST: _as_list,
    DataType.DICT: _as_dict,
    DataType.JSON: _parsed_json,
    DataType.DATETIME: _as_datetime,
}


def coerce(value: Any, data_type: str) -> Any:
    """The value converted to ``data_type``; raises ValueError saying what was expected. Unknown types pass through."""
    try:
        coercer = _COERCERS[DataType(data_type)]
    except ValueError:
        return value
    return coercer(value)


# The JSON types each data_type takes as it is, for values a person wrote as JSON, and how to say so.
_EXACT_TYPES: dict[DataType, tuple[tuple[type, ...], str]] = {
    DataType.STRING: ((str,), "text"),
    DataType.TEXT: ((str,), "text"),
    DataType.INT: ((int, float), "an integer"),
    DataType.FLOAT: ((int, float), "a number"),
    DataType.BOOL: ((bool,), "a boolean"),
    DataType.EMAIL: ((str,), "an email address"),
    DataType.URL: ((str,), "an http(s) URL"),
    DataType.LIST: ((list,), "a list"),
    DataType.DICT: ((dict,), "an object"),
    DataType.DATETIME: ((str,), "an ISO 8601 date-time"),
}
_JSON_TYPE_NAMES = {
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "text",
    list: "a list",
    dict: "an object",
}


def coerce_exact(value: Any, data_type: str) -> Any:
    """The value checked against ``data_type`` without converting between JSON types: ``5`` is an int and not a
    string, ``"5"`` a string and not an int, ``true`` a bool and not an int; raises ValueError saying what was
    expected and what was given. Within its JSON type a value is still checked and normalised as ``coerce`` does it
    (an email's spaces, ``5.0`` for an int, ``5.5`` refused). ``json`` and unknown types take anything.

    For an approver's overrides: what they typed is what runs, so a value of another type is a mistake to report,
    not to convert.
    """
    try:
        kind = DataType(data_type)
    except ValueError:
        return value
    if kind == DataType.JSON:
        return value
    accepted, expected = _EXACT_TYPES[kind]
    # bool is an int in Python, not in JSON.
    if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted):
        given = "null" if value is None else _JSON_TYPE_NAMES.get(type(value), type(value).__name__)
        raise ValueError(f"expected {expected}, not {given}")
    return coerce(value, data_type)
