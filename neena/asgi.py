"""ASGI entry point: the application gunicorn's `asgi` worker serves (gunicorn.conf.py says why ASGI).

Django's ASGI handler drops every request header whose name contains an underscore (so that `api_key` and
`api-key` cannot be confused). The public docs' legacy header is spelled `api_key: <token>`, so it is renamed to
`api-key` here, before Django sees the request; Django reads both spellings as HTTP_API_KEY, and a request that
sends both gets them joined into one value that is no valid token.

Bodies past NEENA_MAX_BODY_BYTES are refused before Django reads them (apps/core/asgi_body_limit.py).
"""

import os
from typing import Any

from django.core.asgi import get_asgi_application
from django.urls import get_resolver

from apps.core.asgi_body_limit import BodySizeLimit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neena.settings.base")
django_application = get_asgi_application()
# Import every view now, while the worker starts, instead of during its first request (which took 0.3-0.8 s).
get_resolver().check()

limited_application = BodySizeLimit(django_application)

LEGACY_API_KEY_HEADER = b"api_key"


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and any(name == LEGACY_API_KEY_HEADER for name, _ in scope.get("headers", ())):
        headers = [(b"api-key" if name == LEGACY_API_KEY_HEADER else name, value) for name, value in scope["headers"]]
        scope = {**scope, "headers": headers}
    await limited_application(scope, receive, send)
