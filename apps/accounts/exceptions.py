"""Why an external (OIDC) token was not accepted; the authentication layer turns each into its HTTP answer."""


class TokenRefusedError(Exception):
    """The token cannot be accepted (bad signature, unknown key, expired, another audience or issuer, no usable
    identity, a deactivated user): 401 ``invalid_token``, with the message saying which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class IssuerUnavailableError(Exception):
    """The issuer's discovery document or keys could not be read (unreachable, an error status, not JSON): whether
    the token is good cannot be told, so the request is answered 503 rather than 401."""
