"""The base viewset every resource builds on: objects addressed by ``?id=``, lists paged by skip and limit."""

from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

from django.db.models import Model
from django.shortcuts import get_object_or_404
from rest_framework.request import Request
from rest_framework.viewsets import GenericViewSet

from apps.core.exceptions import InputValidationError
from apps.core.pagination import SkipLimitPagination
from apps.core.query import IdQuerySerializer, parse_query
from apps.core.serializers import NoBodySerializer
from apps.core.storable_text import storable, text_problem

if TYPE_CHECKING:
    from apps.accounts.models import User


class QueryStringViewSet(GenericViewSet):
    """``get_queryset()`` is always scoped to the caller (through a selector), so a foreign id is simply not found."""

    pagination_class = SkipLimitPagination

    @property
    def user(self) -> "User":
        """The caller. Every endpoint requires a token, so by the time a handler runs this is never anonymous."""
        return cast("User", self.request.user)

    @property
    def allowed_methods(self) -> list[str]:
        """OPTIONS answers 405 (the OpenAPI schema describes every endpoint), so it is not advertised in Allow."""
        return [method for method in super().allowed_methods if method != "OPTIONS"]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if "" in request.query_params:
            raise InputValidationError.single(["query"], "A query parameter has no name.", "query_malformed")
        # A NUL (%00) would reach the database in a filter, which PostgreSQL refuses. Django decodes the query string
        # with errors="replace", so a lone surrogate cannot get this far.
        for name, values in request.query_params.lists():
            problem = text_problem(name) or next(filter(None, map(text_problem, values)), None)
            if problem:
                raise InputValidationError.single(["query", storable(name)], *problem)

    def refuse_body_fields(self) -> None:
        """For an endpoint that takes no body: a body with fields answers 422 naming each (a client that sends one
        expects it to mean something)."""
        NoBodySerializer(data=self.request.data).is_valid(raise_exception=True)

    def get_object(self) -> Any:
        """The object named by ``?id=``: 422 when the id is missing or malformed, 404 when not in the queryset."""
        return self.get_object_by_id(parse_query(IdQuerySerializer, self.request)["id"])

    def get_object_by_id(self, object_id: UUID) -> Any:
        obj: Model = get_object_or_404(self.get_queryset(), pk=object_id)
        self.check_object_permissions(self.request, obj)
        return obj
