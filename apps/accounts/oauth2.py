"""The OAuth2 validator: how django-oauth-toolkit issues tokens for Neena."""

from typing import Any

from oauth2_provider.oauth2_validators import OAuth2Validator


class NeenaOAuth2Validator(OAuth2Validator):
    """Client-credentials tokens act as the application's owner.

    Every API object belongs to an organization reached through a user's memberships, so a token needs a user.
    A client-credentials application registered by a (service) user therefore acts as that user.
    """

    def _create_access_token(self, expires: Any, request: Any, token: Any, source_refresh_token: Any = None) -> Any:
        # The toolkit clears request.user for this grant just before creating the token; give it the owner back.
        if request.grant_type == "client_credentials":
            request.user = request.client.user
        return super()._create_access_token(expires, request, token, source_refresh_token=source_refresh_token)
