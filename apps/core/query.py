"""Query-string parsing: one serializer per endpoint's query parameters, errors located under ``query``."""

from typing import Any

from rest_framework import serializers
from rest_framework.request import Request

from apps.core.exceptions import InputValidationError, drf_errors_to_items


def parse_query(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """Validates ``request.query_params`` with the serializer; a bad value answers 422 at ``["query", name]``."""
    serializer = serializer_class(data=request.query_params)
    if not serializer.is_valid():
        raise InputValidationError(list(drf_errors_to_items(serializer.errors, ["query"])))
    return dict(serializer.validated_data)


class IdQuerySerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="The object's id.")
