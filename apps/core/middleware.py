"""Request-level middleware: the request id and the request's timing (outermost), the guards that must run
before any view reads the body, and the API's answers outside the views."""

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.middleware.common import CommonMiddleware

from apps.core.http_errors import is_api_path, status_code_name, status_detail
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


class TrailingSlashMiddleware(CommonMiddleware):
    """Django's CommonMiddleware, minus the APPEND_SLASH redirect for API paths.

    Every API path answers under both spellings (apps/core/url_patterns.py), so the redirect could only ever send a
    client from an unknown path to another unknown one, and a 301 turns a POST into a GET. The admin keeps it.
    """

    def should_redirect_with_slash(self, request: HttpRequest) -> bool:
        return not is_api_path(request.path_info) and super().should_redirect_with_slash(request)


class JSONErrorMiddleware:
    """Gives the JSON error shape to the API's error answers that have none: a non-DRF view's 405, an empty 4xx.

    Django's error handlers (apps/core/views.py) answer 400, 403, 404 and 500 themselves. What no hook reaches is a
    view that returns an error instead of raising one: Django's ``View`` answers a method it lacks with an empty 405
    (``GET /o/token``), ``require_safe`` the same (``POST /healthz``). An error answer that has a body of its own
    (an OAuth2 error, a DRF error) is left as it is.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and is_api_path(request.path)
            and isinstance(response, HttpResponse)
            and (response.status_code == 405 or not response.content)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            status = response.status_code
            detail = f'Method "{request.method}" not allowed.' if status == 405 else status_detail(status)
            json_response = JsonResponse({"detail": detail, "code": status_code_name(status)}, status=status)
            for header in ("Allow", "WWW-Authenticate", "Retry-After"):
                if header in response:
                    json_response[header] = response[header]
            return json_response
        return response
