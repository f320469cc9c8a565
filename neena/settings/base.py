"""Settings shared by every environment; development defaults.

Every value comes from an environment variable, read once through django-environ (``neena.settings._env``; ``FOO_FILE``
may name a file holding the value of ``FOO``). The README lists every variable. This module holds the core (apps,
middleware, templates), the database, internationalisation and static files, the credentials' encryption keys,
logging and metrics, and takes the rest from one module per subject, imported at the end:
``neena.settings.api`` (request and answer limits, idempotency keys, CORS, REST framework and OpenAPI),
``neena.settings.auth`` (the OAuth2 server, an external OIDC issuer, login lockout, API keys),
``neena.settings.worker`` (Celery, Redis, the cache, the beat schedule, step execution) and
``neena.settings.integrations`` (the catalogue, connectors, webhooks, planning and preparation).
``neena.settings.production`` tightens the defaults; ``neena.settings.test`` is what the suite runs with.
"""

import base64
import hashlib

from apps.core.structured_logs import logging_config
from neena.settings._env import BASE_DIR, VAR_DIR, env

# --- Core -------------------------------------------------------------------------------------------------------

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="development-only-secret-key-change-me-in-production-0123456789")
# Former secret keys, still accepted when checking what was signed with them (sessions, and the HMAC of a credential's
# secret an approval recorded), so that rotating DJANGO_SECRET_KEY does not fail the steps approved but not yet run.
SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])
# Off by default even in development: the API answers JSON errors, never Django's debug pages.
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "oauth2_provider",
    "axes",
    "corsheaders",
    "apps.core",
    "apps.accounts",
    "apps.idempotency",
    "apps.integrations",
    "apps.credentials",
    "apps.mcp_servers",
    "apps.flows",
    "apps.runs",
    "apps.webhooks",
    "apps.audit",
]

MIDDLEWARE = [
    # First: every answer, even a refusal by a later middleware, carries the request id and is timed.
    "apps.core.middleware.RequestIdMiddleware",
    "apps.core.middleware.RequestMetricsMiddleware",
    # CORS before everything that can answer: a browser's preflight OPTIONS is answered here, before authentication
    # and slash handling, and every other answer (a refusal by a later middleware included) gets its CORS headers.
    # Only the two above stay outside it; they never answer themselves, so preflights keep a request id and timing.
    "corsheaders.middleware.CorsMiddleware",
    # Outside the rest, so it sees every answer: the API's error answers that lack the JSON shape get it.
    "apps.core.middleware.JSONErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "apps.core.middleware.BodySizeLimitMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # CommonMiddleware without the APPEND_SLASH redirect for API paths, which answer both spellings.
    "apps.core.middleware.TrailingSlashMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a login refused for too many failures into the lockout answer (AXES_LOCKOUT_CALLABLE).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "neena.urls"
# JSON 403 for the API and the OAuth2 server, Django's page elsewhere.
CSRF_FAILURE_VIEW = "apps.core.views.csrf_failure"
WSGI_APPLICATION = "neena.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------------------------

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'neena.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(exist_ok=True)  # the default database lives in the git-ignored var/
    # WAL lets the web server read while a worker writes; IMMEDIATE takes the write lock at BEGIN, so two writers
    # queue on the busy timeout instead of failing with "database is locked" half-way through a transaction.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
# A connection is kept for this long, by each web worker and job, instead of opened per request (and checked first).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# --- Internationalisation and static files -----------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Without collectstatic (development), serve the apps' static files straight from their folders.
SERVESTATIC_USE_FINDERS = env.bool("NEENA_SERVE_STATIC_FROM_APPS", default=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "servestatic.storage.CompressedStaticFilesStorage"},
}

# --- Credentials encryption ---------------------------------------------------------------------------------------


def development_encryption_key(secret_key: str) -> str:
    """A Fernet key derived from SECRET_KEY, so development works without configuring keys (never in production)."""
    return base64.urlsafe_b64encode(hashlib.sha256(f"neena-credentials:{secret_key}".encode()).digest()).decode()


# Comma-separated Fernet keys, newest first: the first encrypts, all decrypt (rotation).
NEENA_ENCRYPTION_KEYS = env.list("NEENA_ENCRYPTION_KEYS", default=[development_encryption_key(SECRET_KEY)])

# --- Logging ---------------------------------------------------------------------------------------------------

# "console" (readable lines, the development default) or "json" (one object per line; the production default).
NEENA_LOG_FORMAT = env.str("NEENA_LOG_FORMAT", default="console")
NEENA_LOG_LEVEL = env.str("NEENA_LOG_LEVEL", default="INFO")
LOGGING = logging_config(log_format=NEENA_LOG_FORMAT, level=NEENA_LOG_LEVEL)

# --- Metrics ----------------------------------------------------------------------------------------------------

# GET /metrics needs "Authorization: Bearer <this token>" when set; empty leaves it open (a private network).
NEENA_METRICS_TOKEN = env.str("NEENA_METRICS_TOKEN", default="")
# Read at each scrape, for the gauges the database and the broker already know (apps/core/exposition.py).
NEENA_METRICS_COLLECTORS = [
    "apps.core.exposition.QueueDepthCollector",
    "apps.runs.metrics.RunStateCollector",
]

# --- The other subjects --------------------------------------------------------------------------------------------
# Each module reads what it needs from the environment itself and refers to no setting of another.

from neena.settings.api import *  # noqa: E402, F403
from neena.settings.auth import *  # noqa: E402, F403
from neena.settings.integrations import *  # noqa: E402, F403
from neena.settings.worker import *  # noqa: E402, F403
