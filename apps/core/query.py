"""Query-string parsing: one serializer per endpoint's query parameters, errors located under ``query``."""

from typing import Any

from rest_framework import serializers
from rest_framework.request import Request

from apps.core.exceptions import InputValidationError, drf_errors_to_items


def parse_query(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """Validates ``request.query_params`` with the serializer; a bad value answers 422 at ``["query", name]``.

    The parameters go in as a plain dict: DRF reads a QueryDict like an HTML form, where ``?limit=`` silently means
    "use the default"; here an empty value is as invalid as any other malformed one.
    """
    serializer = serializer_class(data={key: request.query_params.get(key) for key in request.query_params})
    if not serializer.is_valid():
        raise InputValidationError(list(drf_errors_to_items(serializer.errors, ["query"])))
    return dict(serializer.validated_data)


class IdQuerySerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="The object's id.")
