"""``/api/v1/users/``: the current user, and the idempotent ``create_if_not_exists``."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

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
