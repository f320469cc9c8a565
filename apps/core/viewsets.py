"""The base viewset every resource builds on: objects addressed by ``?id=``, lists paged by skip and limit."""

from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model, QuerySet
from django.shortcuts import get_object_or_404
from rest_framework.request import Request
from rest_framework.viewsets import GenericViewSet

from apps.core.exceptions import InputValidationError
from apps.core.pagination import SkipLimitPagination
from apps.core.query import IdQuerySerializer, parse_query
from apps.core.serializers import NoBodySerializer
from apps.core.storable_text import storable, text_problem

if TYPE_CHECKING:
    from apps.accounts.models import Organization, User


def _has_organization(model: type[Model]) -> bool:
    try:
        model._meta.get_field("organization")
    except FieldDoesNotExist:
        return False
    return True


class QueryStringViewSet(GenericViewSet):
    """``get_queryset()`` is always scoped to the caller (through a selector), so a foreign id is simply not found."""

    pagination_class = SkipLimitPagination
    # Lists of a model with an ``organization`` are narrowed to the header's organization here; a viewset whose
    # rows may also be shared (organization empty) narrows its queryset itself and turns this off.
    narrow_list_by_header = True

    @property
    def user(self) -> "User":
        """The caller. Every endpoint requires a token, so by the time a handler runs this is never anonymous."""
        return cast("User", self.request.user)

    @property
    def allowed_methods(self) -> list[str]:
        """OPTIONS answers 405 (the OpenAPI schema describes every endpoint), so it is not advertised in Allow."""
        return [method for method in super().allowed_methods if method != "OPTIONS"]

    @property
    def header_organization(self) -> "Organization | None":
        """The organization the ``X-Neena-Organization`` header names (checked: one of the caller's), or None."""
        from apps.accounts.roles import request_organization  # core is imported by accounts; not the other way

        return request_organization(self.request)

    def visible_organization_ids(self) -> Any:
        """A subquery of the organizations whose objects the caller sees here: the header's, else all of theirs."""
        from apps.accounts.selectors import organization_list_for_user_narrowed

        return organization_list_for_user_narrowed(user=self.user, organization=self.header_organization)

    def target_organization(self, organization_id: UUID | None) -> UUID | None:
        """Where a new object goes: the body's organization when it names one, else the header's, else None (the
        service's default, the personal organization). Both are checked, the header before the handler runs, the
        body's by the service."""
        if organization_id is not None:
            return organization_id
        header = self.header_organization
        return header.id if header is not None else None

    def paginate_queryset(self, queryset: Any) -> Any:
        """Every list: with ``X-Neena-Organization``, only that organization's objects; without, all the caller's."""
        header = self.header_organization
        narrow = self.narrow_list_by_header and isinstance(queryset, QuerySet) and _has_organization(queryset.model)
        if header is not None and narrow:
            queryset = queryset.filter(organization_id=header.id)
        return super().paginate_queryset(queryset)

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
