"""Health and metrics endpoints, and Django's error views: JSON for API paths, Django's HTML pages elsewhere.

``neena/urls.py`` names these as ``handler400``, ``handler403``, ``handler404`` and ``handler500``, and the settings
name ``csrf_failure`` as ``CSRF_FAILURE_VIEW``. Which paths are API paths: ``apps.core.http_errors.is_api_path``.
"""

import hmac

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import csrf, defaults
from django.views.decorators.http import require_safe

from apps.core.exposition import metrics_exposition
from apps.core.health import broker_is_up, database_is_up
from apps.core.http_errors import is_api_path


def error_response(status: int, detail: str, code: str) -> JsonResponse:
    """The one JSON error body of the API outside DRF: ``{"detail": ..., "code": ...}``."""
    return JsonResponse({"detail": detail, "code": code}, status=status)


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when the database and the broker both answer, else 503 naming what is down."""
    checks = {"database": database_is_up(), "broker": broker_is_up()}
    ready = all(checks.values())
    body = {"status": "ok" if ready else "unavailable", "checks": {k: "ok" if v else "down" for k, v in checks.items()}}
    return JsonResponse(body, status=200 if ready else 503)


def _metrics_token_matches(request: HttpRequest) -> bool:
    """Open without NEENA_METRICS_TOKEN; else the request must send it as a bearer token (compared in constant
    time, so the answer's timing tells nothing about how much of a guess was right)."""
    expected = settings.NEENA_METRICS_TOKEN
    if not expected:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus scrape target: this host's counters and histograms, and the gauges read now (see
    ``apps.core.exposition``). A plain Django view: Prometheus authenticates with its own bearer token, not an API
    token, and reads the text exposition format, not JSON."""
    if not _metrics_token_matches(request):
        error = {"detail": "Invalid or missing metrics token.", "code": "not_authenticated"}
        response = JsonResponse(error, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = metrics_exposition()
    return HttpResponse(body, content_type=content_type)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400: Django's answer to a ``SuspiciousOperation`` or ``BadRequest`` raised outside DRF's views.

    A ``Host`` header not in ALLOWED_HOSTS is the common one (``bad_host``); ``request.path`` is still known then,
    only ``get_host()`` raises. A form body past DATA_UPLOAD_MAX_MEMORY_SIZE (``/o/token``) is a 413, as in DRF.
    """
    if not is_api_path(request.path):
        return defaults.bad_request(request, exception)
    if isinstance(exception, DisallowedHost):
        return error_response(400, "The Host header is not one this server answers for.", "bad_host")
    if isinstance(exception, RequestDataTooBig):
        return error_response(413, "Request body is too large.", "request_too_large")
    return error_response(400, "Bad request.", "bad_request")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler403: a ``PermissionDenied`` raised outside DRF's views."""
    if not is_api_path(request.path):
        return defaults.permission_denied(request, exception)
    return error_response(403, "You do not have permission to perform this action.", "permission_denied")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: a path no route takes (or an ``Http404`` raised outside DRF's views)."""
    if not is_api_path(request.path):
        return defaults.page_not_found(request, exception)
    return error_response(404, "Not found.", "not_found")


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: an unhandled exception. It is logged by Django (``django.request``) before this runs."""
    if not is_api_path(request.path):
        return defaults.server_error(request)
    return error_response(500, "Internal server error.", "server_error")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a cookie-authenticated POST without a valid CSRF token (the OAuth2 consent form)."""
    if not is_api_path(request.path):
        return csrf.csrf_failure(request, reason)
    return error_response(403, f"CSRF verification failed: {reason}", "csrf_failed")
