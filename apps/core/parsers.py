"""The API's JSON parser: DRF's, plus the checks that keep text the database cannot store out of every body.

Without them a lone surrogate (``"\\ud800"``, which Python's json module reads as one) or a NUL reaches the database:
SQLite stores it and every answer that renders the row fails for good; PostgreSQL refuses it after other rows of the
request were written. A body nested deeper than NEENA_MAX_JSON_DEPTH is refused too, before anything that walks it
recursively (serializers, the JSON encoders) can run out of stack; the parser's own RecursionError, for bodies nested
about a thousand levels deep, is the same 422.
"""

from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.parsers import JSONParser

from apps.core.exceptions import InputValidationError
from apps.core.storable_text import json_problem


def too_deep() -> InputValidationError:
    limit = settings.NEENA_MAX_JSON_DEPTH
    return InputValidationError.single(["body"], f"JSON may be nested at most {limit} levels deep.", "json_too_deep")


def checked_json(data: Any) -> Any:
    """The parsed body, if every string in it can be stored and it is not nested too deep; else the 422 naming the
    first field that is wrong (``["body", ...path]``)."""
    problem = json_problem(data, max_depth=settings.NEENA_MAX_JSON_DEPTH)
    if problem is not None:
        raise InputValidationError.single(["body", *problem.path], problem.msg, problem.type)
    return data


class CheckedJSONParser(JSONParser):
    """DRF's JSONParser (the same media type and errors), answering 422 for unstorable text and deep nesting."""

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise too_deep() from None
        return checked_json(data)
