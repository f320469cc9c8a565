"""Health and metrics endpoints, and the JSON answers for unknown paths and crashes."""

import hmac
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe

from apps.core.exposition import metrics_exposition
from apps.core.health import broker_is_up, database_is_up


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers."""
    return JsonResponse({"status": "ok"})


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


def not_found(request: HttpRequest, exception: Any = None) -> JsonResponse:
    return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"detail": "Internal server error.", "code": "server_error"}, status=500)
