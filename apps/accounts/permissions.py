"""Token scopes: ``read`` for GET, ``write`` for changes, ``approve`` for approval decisions."""

from collections.abc import Iterable
from typing import Any, Protocol, cast

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request


class ScopedToken(Protocol):
    """What ``request.auth`` is: the toolkit's AccessToken, or an OIDC issuer's verified JWT (``OIDCToken``)."""

    scope: str

    def allow_scopes(self, scopes: Iterable[str]) -> bool: ...


def required_scope(request: Request, view: Any) -> str:
    """The scope an action needs: the view's ``action_scopes`` entry, else read for safe methods and write otherwise."""
    action_scopes: dict[str, str] = getattr(view, "action_scopes", {})
    action = getattr(view, "action", None)
    if action in action_scopes:
        return action_scopes[action]
    return "read" if request.method in SAFE_METHODS else "write"


class HasTokenScope(BasePermission):
    """Authenticated, and the token carries the action's scope; otherwise 401 (no token) or 403 (scope missing)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated and request.auth is not None):
            return False
        scope = required_scope(request, view)
        if not cast(ScopedToken, request.auth).allow_scopes([scope]):
            self.message = f"The token lacks the '{scope}' scope."
            return False
        return True


def token_scopes(request: Request) -> list[str]:
    """The scopes of the token the request came with."""
    return cast(ScopedToken, request.auth).scope.split() if request.auth is not None else []
