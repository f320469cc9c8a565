"""Which paths answer errors as JSON, and the stable ``code`` of each HTTP error status.

Clients of the API and of the OAuth2 server (``/o/``) are programs: every error they get is
``{"detail": ..., "code": ...}`` (docs/api-errors.md), whoever answers it: a DRF view, Django's error handlers, the
CSRF check, a non-DRF view's 405, gunicorn's own parser errors (``neena/web_worker.py``). The admin and the login
pages are for people and keep Django's HTML pages.

This module imports nothing from Django, so the web server's worker can use it before Django is set up.
"""

from http import HTTPStatus

# Path prefixes whose errors are JSON, and the health endpoints (machines read them too).
API_PATH_PREFIXES = ("/api/", "/o/")
API_PATHS = frozenset({"/api", "/o", "/healthz", "/readyz", "/metrics", "/metrics/"})

# The code of an error answered for its status alone, not by a view that knows more (DRF's handler names its own).
STATUS_CODES = {
    400: "bad_request",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "request_too_large",
    414: "uri_too_long",
    431: "header_too_large",
    500: "server_error",
    501: "not_implemented",
    503: "service_unavailable",
}


def is_api_path(path: str) -> bool:
    """True for the paths whose errors are JSON: ``/api/...``, ``/o/...`` and the health endpoints."""
    return path in API_PATHS or path.startswith(API_PATH_PREFIXES)


def status_code_name(status: int) -> str:
    """The ``code`` for an error status: the documented one, else the status phrase in snake case."""
    if status in STATUS_CODES:
        return STATUS_CODES[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def status_detail(status: int) -> str:
    """A generic ``detail`` for an error status, for answers that know nothing more than the status."""
    try:
        return f"{HTTPStatus(status).phrase}."
    except ValueError:
        return "Error."
