"""Request-level guards that must run before any view reads the body."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.common import CommonMiddleware

from apps.core.http_errors import is_api_path


class BodySizeLimitMiddleware:
    """Answers 413 for a body larger than NEENA_MAX_BODY_BYTES.

    DRF's parsers stream the body and so skip Django's DATA_UPLOAD_MAX_MEMORY_SIZE check; this restores it for
    every endpoint, from the declared Content-Length, before anything is read.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            return JsonResponse(
                {"detail": f"Request body is larger than {limit} bytes.", "code": "request_too_large"}, status=413
            )
        return self.get_response(request)


class TrailingSlashMiddleware(CommonMiddleware):
    """Django's CommonMiddleware, minus the APPEND_SLASH redirect for API paths.

    Every API path answers under both spellings (apps/core/url_patterns.py), so the redirect could only ever send a
    client from an unknown path to another unknown one, and a 301 turns a POST into a GET. The admin keeps it.
    """

    def should_redirect_with_slash(self, request: HttpRequest) -> bool:
        return not is_api_path(request.path_info) and super().should_redirect_with_slash(request)
