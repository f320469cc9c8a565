"""``/api/v1/users/``: the current user, and the idempotent ``create_if_not_exists``; ``/api/v1/organizations/``: the
caller's organizations and their members; the OAuth2 server's token and
revocation endpoints, with client lockout."""

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import extend_schema, extend_schema_view
from oauth2_provider import views as oauth2_views
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts import services
from apps.accounts.lockout import client_attempt_record, client_lockout_answer, client_lockout_remaining
from apps.accounts.models import Organization, User
from apps.accounts.permissions import token_scopes
from apps.accounts.selectors import (
    membership_list_for_organization,
    membership_list_for_user,
    organization_list_with_role_for_user,
)
from apps.accounts.serializers import (
    MemberInputSerializer,
    MemberRemoveQuerySerializer,
    MemberSerializer,
    MembersQuerySerializer,
    OrganizationInputSerializer,
    OrganizationSerializer,
    OrganizationUpdateInputSerializer,
    UserCreateIfNotExistsSerializer,
    UserSerializer,
)
from apps.core.query import IdQuerySerializer, parse_query
from apps.core.viewsets import QueryStringViewSet
from apps.idempotency.decorators import idempotent


def _user_payload(user: User, permissions: list[str] | None) -> dict[str, Any]:
    return {
        "email": user.email,
        "full_name": user.full_name,
        "auth0_id": user.auth0_id,
        "id": user.id,
        "permissions": permissions,
        "organizations": membership_list_for_user(user=user),
    }


class UserViewSet(QueryStringViewSet):
    """The caller's own account; there is no way to read anyone else's."""

    @extend_schema(operation_id="users_me", summary="Get the current user", responses=UserSerializer)
    def retrieve(self, request: Request) -> Response:
        return Response(UserSerializer(_user_payload(self.user, token_scopes(request))).data)

    @extend_schema(
        operation_id="users_create_if_not_exists",
        summary="Create the user if it does not exist",
        description="The body's email must be the caller's own (403 otherwise). Blank profile fields are filled in.",
        request=UserCreateIfNotExistsSerializer,
        responses=UserSerializer,
    )
    @action(detail=False, methods=["post"], url_path="create_if_not_exists")
    def create_if_not_exists(self, request: Request) -> Response:
        serializer = UserCreateIfNotExistsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_create_if_not_exists(caller=self.user, **serializer.validated_data)
        return Response(UserSerializer(_user_payload(user, None)).data)


class ClientLockoutMixin:
    """Refuses (429) a client id that failed to authenticate NEENA_LOGIN_FAILURE_LIMIT times from this address,
    before the toolkit checks anything; counts the toolkit's 401 answers (``invalid_client``) as failures."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        remaining = client_lockout_remaining(request)
        if remaining:
            return client_lockout_answer(remaining)
        response: HttpResponse = super().post(request, *args, **kwargs)  # type: ignore[misc]
        if response.status_code == 401:
            client_attempt_record(request, failed=True)
        elif response.status_code < 400:
            client_attempt_record(request, failed=False)
        return response


class TokenView(ClientLockoutMixin, oauth2_views.TokenView):
    """``/o/token/``: the toolkit's token endpoint, with client lockout."""


class RevokeTokenView(ClientLockoutMixin, oauth2_views.RevokeTokenView):
    """``/o/revoke_token/``: the toolkit's revocation endpoint, with client lockout."""


@extend_schema_view(
    list=extend_schema(
        operation_id="organizations_list",
        summary="Read all the caller's organizations",
        description="Each with the caller's role in it; the personal organization first.",
        responses=OrganizationSerializer(many=True),
    ),
    retrieve=extend_schema(
        operation_id="organizations_retrieve",
        summary="Read an organization",
        parameters=[IdQuerySerializer],
        responses=OrganizationSerializer,
    ),
)
class OrganizationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, QueryStringViewSet):
    """``/api/v1/organizations/``: the caller's organizations, their approval policy and their members. What each
    role may do here is in ``apps/accounts/roles.py``; the services check it again."""

    serializer_class = OrganizationSerializer

    def get_queryset(self) -> QuerySet[Organization]:
        return organization_list_with_role_for_user(user=self.user)

    def _render(self, organization: Organization) -> Response:
        return Response(OrganizationSerializer(self.get_queryset().get(id=organization.id)).data)

    @extend_schema(
        operation_id="organizations_create",
        summary="Create an organization",
        description="A shared organization, the caller its owner; add members with POST organizations/members.",
        request=OrganizationInputSerializer,
        responses=OrganizationSerializer,
    )
    @idempotent()
    def create(self, request: Request) -> Response:
        serializer = OrganizationInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._render(services.organization_create(user=self.user, **serializer.to_service_kwargs()))

    @extend_schema(
        operation_id="organizations_update",
        summary="Update an organization's name and approval policy",
        description="Needs the admin role. Runs already waiting for approval keep waiting; the new timeout applies "
        "to them from the sweeper's next pass.",
        request=OrganizationUpdateInputSerializer,
        responses=OrganizationSerializer,
    )
    @idempotent()
    def update(self, request: Request) -> Response:
        serializer = OrganizationUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        organization = self.get_object_by_id(serializer.validated_data["id"])
        return self._render(
            services.organization_update(user=self.user, organization=organization, **serializer.to_service_kwargs())
        )

    @extend_schema(
        operation_id="organizations_destroy",
        summary="Delete an organization",
        description="Needs the owner role. Deletes everything in it. 409 for a personal organization, or while runs "
        "in it have not ended.",
        parameters=[IdQuerySerializer],
        responses=OrganizationSerializer,
    )
    def destroy(self, request: Request) -> Response:
        organization = self.get_object()
        body = OrganizationSerializer(organization).data
        services.organization_delete(user=self.user, organization=organization)
        return Response(body)

    def _organization_from_query(self, query_serializer: type[MembersQuerySerializer]) -> tuple[Organization, Any]:
        query = parse_query(query_serializer, self.request)
        return self.get_object_by_id(query["organization_id"]), query

    @extend_schema(
        operation_id="organizations_members_list",
        summary="Read an organization's members",
        parameters=[MembersQuerySerializer],
        responses=MemberSerializer(many=True),
    )
    @action(detail=False, methods=["get"], url_path="members")
    def members(self, request: Request) -> Response:
        organization, _ = self._organization_from_query(MembersQuerySerializer)
        page = self.paginate_queryset(membership_list_for_organization(organization=organization))
        return Response(MemberSerializer(page, many=True).data)

    @extend_schema(
        operation_id="organizations_members_add",
        summary="Add a member",
        description="Needs the admin role (the owner role to add an owner). A user with no account yet is "
        "provisioned, with a personal organization. 409 already_member when they are one.",
        parameters=[MembersQuerySerializer],
        request=MemberInputSerializer,
        responses=MemberSerializer,
    )
    @members.mapping.post
    @idempotent()
    def members_add(self, request: Request) -> Response:
        organization, _ = self._organization_from_query(MembersQuerySerializer)
        serializer = MemberInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.membership_add(user=self.user, organization=organization, **serializer.validated_data)
        return Response(MemberSerializer(membership).data)

    @extend_schema(
        operation_id="organizations_members_role_change",
        summary="Change a member's role",
        description="Needs the admin role (the owner role to make or unmake an owner). 409 last_owner for the "
        "organization's only owner.",
        parameters=[MembersQuerySerializer],
        request=MemberInputSerializer,
        responses=MemberSerializer,
    )
    @members.mapping.put
    @idempotent()
    def members_role_change(self, request: Request) -> Response:
        organization, _ = self._organization_from_query(MembersQuerySerializer)
        serializer = MemberInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.membership_role_change(
            user=self.user, organization=organization, **serializer.validated_data
        )
        return Response(MemberSerializer(membership).data)

    @extend_schema(
        operation_id="organizations_members_remove",
        summary="Remove a member",
        description="Anyone may leave (their own email); removing another member needs the admin role, an owner the "
        "owner role. 409 last_owner for the organization's only owner.",
        parameters=[MemberRemoveQuerySerializer],
        request=None,
        responses=MemberSerializer,
    )
    @members.mapping.delete
    def members_remove(self, request: Request) -> Response:
        self.refuse_body_fields()
        organization, query = self._organization_from_query(MemberRemoveQuerySerializer)
        membership = services.membership_remove(user=self.user, organization=organization, email=query["email"])
        return Response(MemberSerializer(membership).data)
