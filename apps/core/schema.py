"""OpenAPI generation: the documented error responses added to every operation, so the schema is exact."""

from typing import Any, Literal

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import serializers


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "integer"}]})
class LocationItemField(serializers.Field):
    """A path step in a validation error: a field name or a list index."""


class ValidationErrorItemSerializer(serializers.Serializer):
    loc = serializers.ListField(child=LocationItemField(), help_text='Where the problem is, e.g. ["body", "name"].')
    msg = serializers.CharField(help_text="What is wrong.")
    type = serializers.CharField(help_text="A stable code for the kind of problem.")


class ValidationErrorSerializer(serializers.Serializer):
    detail = ValidationErrorItemSerializer(many=True)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()


ORGANIZATION_HEADER_PARAMETER = OpenApiParameter(
    "X-Neena-Organization",
    OpenApiTypes.UUID,
    OpenApiParameter.HEADER,
    required=False,
    description="The organization the request acts in: creates go there, lists are narrowed to it. The caller must "
    "be a member (else 404) with the role the action needs (else 403 role_required). Default: the personal "
    "organization for creates, every organization of the caller's for lists.",
)


class NeenaAutoSchema(AutoSchema):
    """Adds the error answers of DESIGN.md §1 that each kind of operation can give, and the organization header to
    every operation that needs a token."""

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        if self.view.authentication_classes:
            parameters.append(ORGANIZATION_HEADER_PARAMETER)
        return parameters

    def _error_codes(self) -> dict[str, type[serializers.Serializer]]:
        action = getattr(self.view, "action", None)
        codes: dict[str, type[serializers.Serializer]] = {"422": ValidationErrorSerializer, "503": ErrorSerializer}
        if self.view.authentication_classes:
            codes.update({"401": ErrorSerializer, "403": ErrorSerializer, "429": ErrorSerializer})
            # X-Neena-Organization naming an organization the caller is not a member of, lists included.
            codes["404"] = ErrorSerializer
        if action != "list":
            codes["404"] = ErrorSerializer
        # A state conflict, a database integrity conflict, an Idempotency-Key whose first request still runs, or (on
        # flows/generate) a request that changed while its flow was planned (flow_request_changed).
        if self.method in ("POST", "PUT", "DELETE") or action == "generate":
            codes["409"] = ErrorSerializer
        if self.method in ("POST", "PUT"):
            codes["413"] = ErrorSerializer
        return codes

    def _get_response_bodies(self, direction: Literal["request", "response"] = "response") -> Any:
        responses = super()._get_response_bodies(direction=direction)
        if direction == "response":
            # The documented API answers 200 on success, creates included.
            if "201" in responses:
                responses["200"] = responses.pop("201")
            for code, serializer in self._error_codes().items():
                if code not in responses:
                    responses[code] = self._get_response_for_code(serializer, code)
        return responses


def drop_second_spellings(endpoints: list[tuple[str, str, str, Any]]) -> list[tuple[str, str, str, Any]]:
    """drf-spectacular's preprocessing hook: one operation per path, as the documentation writes it.

    ``with_both_spellings`` (apps/core/url_patterns.py) routes each ``path()`` with and without its trailing slash;
    the schema would list both as two operations of one view. The documented spelling comes first in the URL map
    and is kept.
    """
    seen: set[tuple[str, str]] = set()
    kept = []
    for path, path_regex, method, callback in endpoints:
        key = (path.rstrip("/"), method)
        if key not in seen:
            seen.add(key)
            kept.append((path, path_regex, method, callback))
    return kept
