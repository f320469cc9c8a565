"""The answers an inbound delivery can get besides the shared ones (404, 422): 401, 413 and 503."""

from rest_framework import status

from apps.core.exceptions import ApplicationError


class SignatureError(ApplicationError):
    """The delivery is not signed with the operation's secret (missing, wrong or stale signature)."""

    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "signature_invalid"


class PayloadTooLargeError(ApplicationError):
    """The delivery's body is larger than NEENA_WEBHOOK_MAX_BODY_BYTES."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"


class SecretUnavailableError(ApplicationError):
    """The operation's secret cannot be decrypted (its encryption key was removed): nothing can be verified, so the
    sender is told to try again later rather than that its signature is wrong."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "secret_unavailable"
