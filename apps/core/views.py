"""Health endpoints and the JSON answers for unknown paths and crashes."""

from typing import Any

from django.http import HttpRequest, JsonResponse

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


def not_found(request: HttpRequest, exception: Any = None) -> JsonResponse:
    return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"detail": "Internal server error.", "code": "server_error"}, status=500)
