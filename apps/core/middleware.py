"""Request-level guards that must run before any view reads the body."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


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
