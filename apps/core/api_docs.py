"""The API's docs pages, Swagger UI and ReDoc (drf-spectacular's views), kept from loading anything from outside.

Their scripts and styles are drf-spectacular-sidecar's static files, Swagger UI's validator badge is off
(SPECTACULAR_SETTINGS) and ReDoc's Google Fonts links are gone (templates/drf_spectacular/redoc.html). What the
bundled scripts would still fetch on their own (ReDoc's side menu shows Redocly's logo from cdn.redoc.ly) a
Content-Security-Policy stops: these pages may reach this server only. So a visitor's browser tells no outsider
about the deployment, and the pages work on a closed network.
"""

from typing import Any

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView
from rest_framework.request import Request
from rest_framework.response import Response

# 'unsafe-inline' for the pages' own inline script and the styles both UIs set inline; blob: for ReDoc's search
# worker; data: for the images and fonts both bundles inline.
DOCS_CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ]
)


class SwaggerUIView(SpectacularSwaggerView):
    """drf-spectacular's Swagger UI page, allowed to reach this server only."""

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
        return response


class RedocView(SpectacularRedocView):
    """drf-spectacular's ReDoc page, allowed to reach this server only."""

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
        return response
