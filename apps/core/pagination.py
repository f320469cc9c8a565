"""Skip/limit pagination: ``/all?skip=&limit=`` answers a plain JSON array, newest first."""

from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.query import parse_query

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Beyond PostgreSQL's 32-bit integers nobody is paging anyway; the bound keeps OFFSET valid on every backend.
MAX_SKIP = 2**31 - 1


class SkipLimitQuerySerializer(serializers.Serializer):
    skip = serializers.IntegerField(min_value=0, max_value=MAX_SKIP, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)


class SkipLimitPagination(BasePagination):
    """Slices a queryset by ``skip`` and ``limit``; invalid values answer 422 naming the query parameter."""

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: Any = None) -> list[Any]:
        params = parse_query(SkipLimitQuerySerializer, request)
        skip, limit = params["skip"], params["limit"]
        return list(queryset[skip : skip + limit])

    def get_paginated_response(self, data: Any) -> Response:
        return Response(data)

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return schema

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": "skip",
                "in": "query",
                "required": False,
                "description": "Number of items to skip.",
                "schema": {"type": "integer", "minimum": 0, "maximum": MAX_SKIP, "default": 0},
            },
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": "Maximum number of items to return.",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            },
        ]
