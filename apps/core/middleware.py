"""Request-level middleware: the request id and the request's timing (outermost), and the guards that must run
before any view reads the body."""

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core.metrics import record_http_request
from apps.core.request_id import REQUEST_ID_HEADER, request_id_accept, request_id_begin

# The metrics endpoint is left out of the request histogram: a scrape every few seconds would only measure itself.
_UNTIMED_VIEWS = frozenset({"metrics", "metrics-slash"})


class RequestIdMiddleware:
    """Gives the request its id (the client's ``X-Request-ID`` when acceptable, else a new one), binds it into every
    log line written while the request is served and into every job it queues, and echoes it in the answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_accept(request.headers.get(REQUEST_ID_HEADER))
        request_id_begin(request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


def view_label(request: HttpRequest) -> str:
    """The request's URL pattern by name (``flow_runs-list``), or its route when unnamed; never the path, which
    clients choose. Requests that matched no pattern share one label."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.view_name or match.route or "unnamed"


class RequestMetricsMiddleware:
    """Observes each request's duration in ``neena_http_request_duration_seconds`` by view, method and status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        view = view_label(request)
        if view not in _UNTIMED_VIEWS:
            seconds = time.perf_counter() - started
            record_http_request(view=view, method=request.method or "", status=response.status_code, seconds=seconds)
        return response


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
