"""Bearer-token authentication with the header forms existing clients send.

Tokens are django-oauth-toolkit access tokens (OAuth2-issued or personal API keys) and, when NEENA_OIDC_ISSUER is
set, JWTs from that OIDC issuer: a bearer shaped like a JWT (three base64url segments; Neena's own tokens have no
dots) is verified by ``apps.accounts.oidc`` and acts as the user its email claim names, provisioned when new
(``user_sign_in_oidc``). Without an issuer a JWT goes the toolkit's way and is refused as unknown. Besides the standard
``Authorization: Bearer <token>``, the fuller public docs send ``api_key: <token>`` and some reference examples send
a bare ``Authorization: <token>``; both are read as if they were the standard form.

A token of a deactivated user (``is_active`` false) is refused with 401 on every request, whatever the token: the
check is ``user_authentication_check``, which every way of authenticating calls (bearer tokens here; the admin's
sessions through Django's ``ModelBackend``, which drops an inactive user's session; the OIDC path calls it too).

Two things are refused outright, with a 401 that says why, instead of being ignored (which would answer
``not_authenticated`` and leave the client guessing): a token in the query string (``?access_token=``, RFC 6750
§2.3), which access logs, proxies and browser histories keep; and any other scheme (``Basic``, ``Token``, ...).
"""

from typing import Any

from django.http import HttpRequest, QueryDict
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from oauth2_provider.oauth2_backends import get_oauthlib_core
from rest_framework import status
from rest_framework.exceptions import APIException, AuthenticationFailed
from rest_framework.request import Request

from apps.accounts.exceptions import IssuerUnavailableError, TokenRefusedError
from apps.accounts.oidc import OIDCToken, looks_like_jwt, oidc_enabled, token_identity, token_scope, token_verify
from apps.accounts.services import user_sign_in_oidc

# RFC 6750 §2.3 names the query parameter; its presence alone is refused.
QUERY_TOKEN_PARAMETER = "access_token"  # noqa: S105 (a parameter name, not a secret)


def user_authentication_check(user: Any) -> None:
    """Refuses (401) a request authenticated as a user who may no longer sign in: deactivated (``is_active`` false).

    Called by every authentication class once it has found the user, on every request, so deactivating a user stops
    their API keys, OAuth2 tokens, OIDC bearer tokens and sessions at once, approve included: nothing is cached.
    """
    if user is None or not getattr(user, "is_active", False):
        raise AuthenticationFailed("The user of this token is deactivated.", code="user_inactive")


def _normalise_authorization(meta: dict[str, Any]) -> None:
    authorization = meta.get("HTTP_AUTHORIZATION", "").strip()
    if not authorization:
        api_key = meta.get("HTTP_API_KEY", "").strip()
        if api_key:
            meta["HTTP_AUTHORIZATION"] = f"Bearer {api_key}"
    elif " " not in authorization:
        meta["HTTP_AUTHORIZATION"] = f"Bearer {authorization}"


class OIDCIssuerUnavailable(APIException):
    """The issuer's keys could not be read, so a JWT can be neither accepted nor refused: 503, try again."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The token's issuer could not be reached to check its signature; try again shortly."
    default_code = "oidc_issuer_unavailable"


def _authenticate_jwt(request: Request, token: str) -> tuple[Any, OIDCToken]:
    """Verifies the JWT (no transaction is open yet: reading the issuer's keys is a network call), then finds or
    provisions its user in a short one."""
    try:
        claims = token_verify(token)
        identity = token_identity(claims)
        user = user_sign_in_oidc(subject=identity.subject, email=identity.email, full_name=identity.full_name)
    except TokenRefusedError as error:
        setattr(request, "oauth2_error", {"error": "invalid_token"})  # noqa: B010
        raise AuthenticationFailed(error.message, code="invalid_token") from error
    except IssuerUnavailableError as error:
        raise OIDCIssuerUnavailable() from error
    return user, OIDCToken(claims=claims, scope=token_scope(claims))


class _HeadersOnly:
    """The request as the toolkit sees it here: everything but the body, which it would otherwise parse (tokens
    are only accepted in headers, so the body has nothing to give)."""

    POST = QueryDict()

    def __init__(self, request: HttpRequest) -> None:
        self._request = request

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


class BearerTokenAuthentication(OAuth2Authentication):
    """OAuth2 bearer tokens; a missing or invalid token answers 401 with ``WWW-Authenticate: Bearer``."""

    www_authenticate_realm = "neena"

    def authenticate(self, request: Request) -> Any:
        """Checks the token without touching the body: the toolkit reads ``request.POST``, which would run the body
        parsers first and answer 415 or 422 to a caller who should get 401 or 403."""
        django_request = request._request
        if QUERY_TOKEN_PARAMETER in django_request.GET:
            setattr(request, "oauth2_error", {"error": "invalid_request"})  # noqa: B010
            raise AuthenticationFailed(
                "Send the token in the Authorization header (Authorization: Bearer <token>) or the api_key header, "
                "never in the URL: access_token in the query string is refused.",
                code="token_in_query",
            )
        _normalise_authorization(django_request.META)
        scheme = next(iter(django_request.META.get("HTTP_AUTHORIZATION", "").split(maxsplit=1)), "")
        if scheme and scheme.lower() != "bearer":
            setattr(request, "oauth2_error", {"error": "invalid_request"})  # noqa: B010
            raise AuthenticationFailed(
                "Only bearer tokens are accepted (Authorization: Bearer <token>, or the api_key header); the Basic, "
                "Token and other authentication schemes are not supported.",
                code="unsupported_scheme",
            )
        credentials = django_request.META.get("HTTP_AUTHORIZATION", "").split(maxsplit=1)
        if len(credentials) == 2 and oidc_enabled() and looks_like_jwt(credentials[1]):
            return _authenticate_jwt(request, credentials[1])
        valid, oauth_request = get_oauthlib_core().verify_request(_HeadersOnly(django_request), scopes=[])
        if valid:
            # The toolkit checks the token, not its user: deactivating someone must end their tokens and keys at once.
            try:
                user_authentication_check(oauth_request.user)
            except AuthenticationFailed:
                setattr(request, "oauth2_error", {"error": "invalid_token"})  # noqa: B010
                raise
            return oauth_request.user, oauth_request.access_token
        # Read by authenticate_header() for the WWW-Authenticate challenge.
        setattr(request, "oauth2_error", getattr(oauth_request, "oauth2_error", {}))  # noqa: B010
        if scheme:
            raise AuthenticationFailed("The token is invalid or has expired.", code="invalid_token")
        return None


class BearerTokenAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes token authentication in the OpenAPI schema.

    The legacy ``api_key`` header is an alias of the same token, not a second scheme: declaring it as one would tell
    clients (and schema-driven test tools) that both headers are needed, when either is enough.
    """

    target_class = "apps.accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An OAuth2 access token, a personal API key (`python manage.py create_api_key`) or, when "
            "the deployment names an OIDC issuer (NEENA_OIDC_ISSUER), a JWT that issuer signed for this API. "
            "The same token is also accepted in an `api_key: <token>` header or as a bare `Authorization: <token>`.",
        }
