"""``/api/v1/users/``: the current user, and the idempotent ``create_if_not_exists``; the OAuth2 server's token and
revocation endpoints, with client lockout."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import extend_schema
from oauth2_provider import views as oauth2_views
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.lockout import client_attempt_record, client_lockout_answer, client_lockout_remaining
from apps.accounts.models import User
from apps.accounts.permissions import token_scopes
from apps.accounts.selectors import membership_list_for_user
from apps.accounts.serializers import UserCreateIfNotExistsSerializer, UserSerializer
from apps.accounts.services import user_create_if_not_exists
from apps.core.viewsets import QueryStringViewSet


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
        user = user_create_if_not_exists(caller=self.user, **serializer.validated_data)
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
