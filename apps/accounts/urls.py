"""The accounts' routes: the users and organizations viewsets on the API router, and the OAuth2 server's paths
(django-oauth-toolkit's, with the endpoints that authenticate client applications replaced by ones that lock out
repeated failures)."""

from django.urls import URLPattern, URLResolver, path
from oauth2_provider import urls as oauth2_urls

from apps.accounts.views import OrganizationViewSet, RevokeTokenView, TokenView, UserViewSet

routes = [("users", UserViewSet, "users"), ("organizations", OrganizationViewSet, "organizations")]

_CLIENT_AUTHENTICATING_VIEWS: dict[str, type[TokenView] | type[RevokeTokenView]] = {
    "token": TokenView,
    "revoke-token": RevokeTokenView,
}


def _with_client_lockout(pattern: URLPattern | URLResolver) -> URLPattern | URLResolver:
    if isinstance(pattern, URLPattern) and pattern.name in _CLIENT_AUTHENTICATING_VIEWS:
        return path(str(pattern.pattern), _CLIENT_AUTHENTICATING_VIEWS[pattern.name].as_view(), name=pattern.name)
    return pattern


oauth2_urlpatterns = [_with_client_lockout(pattern) for pattern in oauth2_urls.urlpatterns]
