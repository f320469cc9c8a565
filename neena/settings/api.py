"""API settings: how large a request may be and how much an answer shows, idempotency keys, CORS for browser apps,
and the REST framework with its OpenAPI schema.
"""

import re

from corsheaders.defaults import default_headers
from django.core.exceptions import ImproperlyConfigured

from neena.settings._env import at_least_one, env

# --- Request bodies and answer sizes ---------------------------------------------------------------------------

# Requests larger than this answer 413 before any view parses them.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("NEENA_MAX_BODY_BYTES", default=1_048_576)
# JSON bodies nested deeper than this (objects and arrays, the outermost at 1) answer 422 json_too_deep
# (apps/core/parsers.py): nothing that walks a body recursively can then run out of stack.
NEENA_MAX_JSON_DEPTH = env.int("NEENA_MAX_JSON_DEPTH", default=64)

# How much finished runs' JSON each process keeps for the runs lists (apps/runs/rendering.py), in bytes.
NEENA_RENDER_CACHE_BYTES = env.int("NEENA_RENDER_CACHE_BYTES", default=64 * 1024 * 1024)


# Run lists (flow_runs/all, all_for_flow_id) embed at most this many task runs per run, the first steps; each run says
# how many it has (task_runs_total) and whether some were left out (task_runs_truncated).
NEENA_LIST_TASK_RUNS_LIMIT = at_least_one("NEENA_LIST_TASK_RUNS_LIMIT", 100)
# In those lists, a task run's task_prep_prompt, task_prep_answer or result whose JSON is longer than this many
# characters is null, and named in the task run's omitted_fields; reading the run itself shows it.
NEENA_LIST_TASK_RUN_FIELD_CHARS = at_least_one("NEENA_LIST_TASK_RUN_FIELD_CHARS", 8192)
# Answers showing one run embed at most this many task runs (the default and the maximum of task_runs_limit on
# flow_runs/?id= and with_flow_result). Flows have at most 1000 steps, so by default every step is shown.
NEENA_DETAIL_TASK_RUNS_LIMIT = at_least_one("NEENA_DETAIL_TASK_RUNS_LIMIT", 1000)
# POST /flow_runs/retry_failed (and `manage.py runs retry`) retries at most this many failed runs per call, oldest
# failure first; its answer says when there were more ("more": true).
NEENA_RETRY_FAILED_LIMIT = at_least_one("NEENA_RETRY_FAILED_LIMIT", 100)

# Each embedded task run shows its latest attempts (the timeline: claims, retries, re-queues, approvals), at most this
# many in the run lists and at most the second many when one run is read; attempts_total counts them all.
NEENA_LIST_TASK_RUN_ATTEMPTS_LIMIT = at_least_one("NEENA_LIST_TASK_RUN_ATTEMPTS_LIMIT", 5)
NEENA_DETAIL_TASK_RUN_ATTEMPTS_LIMIT = at_least_one("NEENA_DETAIL_TASK_RUN_ATTEMPTS_LIMIT", 100)

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
