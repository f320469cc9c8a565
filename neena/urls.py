"""URL map: the one ``/api/v1/`` router, the OpenAPI schema and docs, the OAuth2 server, health, metrics, the admin.

Every path under ``/api/`` and ``/o/`` answers with and without its trailing slash (apps/core/url_patterns.py), and
its errors are JSON; elsewhere (the admin, the login page) Django's HTML pages (apps/core/views.py).
"""

from django.contrib import admin
from django.contrib.auth.views import LoginView, LogoutView
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from apps.accounts.urls import oauth2_urlpatterns
from apps.accounts.urls import routes as account_routes
from apps.audit.urls import routes as audit_routes
from apps.core import views as core_views
from apps.core.api_docs import RedocView, SwaggerUIView
from apps.core.routers import QueryStringRouter
from apps.core.url_patterns import with_both_spellings
from apps.credentials.urls import routes as credential_routes
from apps.flows.urls import routes as flow_routes
from apps.integrations.urls import routes as integration_routes
from apps.mcp_servers.urls import routes as mcp_server_routes
from apps.runs.urls import routes as run_routes
from apps.webhooks.urls import inbound_urlpatterns as webhook_inbound_urlpatterns
from apps.webhooks.urls import routes as webhook_routes

router = QueryStringRouter()
for prefix, viewset, basename in [
    *account_routes,
    *flow_routes,
    *integration_routes,
    *credential_routes,
    *mcp_server_routes,
    *run_routes,
    *webhook_routes,
    *audit_routes,
]:
    router.register(prefix, viewset, basename=basename)

urlpatterns = [
    path("api/v1/", include(with_both_spellings(webhook_inbound_urlpatterns))),
    path("api/v1/", include(router.urls)),
    *with_both_spellings(
        [
            path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
            path("api/docs/", SwaggerUIView.as_view(url_name="schema"), name="swagger-ui"),
            path("api/redoc/", RedocView.as_view(url_name="schema"), name="redoc"),
        ]
    ),
    path("o/", include((with_both_spellings(oauth2_urlpatterns), "oauth2_provider"), namespace="oauth2_provider")),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    # Both spellings answer (Prometheus configurations differ), neither redirects.
    path("metrics", core_views.metrics, name="metrics"),
    path("metrics/", core_views.metrics, name="metrics-slash"),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]

handler400 = core_views.bad_request
handler403 = core_views.permission_denied
handler404 = core_views.not_found
handler500 = core_views.server_error
