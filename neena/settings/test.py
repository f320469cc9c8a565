"""Settings the test suite runs with: fast hashing, fixed keys, no throttling surprises."""

import os
import sys
from pathlib import Path

from neena.settings.base import *  # noqa: F403
from neena.settings.base import DATABASES, MIDDLEWARE, REST_FRAMEWORK, VAR_DIR, env

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdef"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# A fixed key so encrypted fixtures are reproducible; tests of rotation set their own.
NEENA_ENCRYPTION_KEYS = ["L_k4ZQ3IERxIptfpDdNvOWyKFVsDDV3VVgziCCZpM3c="]
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"user": env.str("NEENA_THROTTLE_RATE", default="100000/minute")},
}
# Throttle counters per test process, unless NEENA_CACHE_URL names a Redis (tests/core/test_throttling.py does).
if not env.str("NEENA_CACHE_URL", default=""):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Static files are not collected for tests; ServeStatic would only warn about the missing directory.
MIDDLEWARE = [entry for entry in MIDDLEWARE if entry != "servestatic.middleware.ServeStaticMiddleware"]

# The test database is a file on SQLite, so the Celery worker processes the tests start can open it too; one per
# test session (by process id), so two sessions on one checkout never share it.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test_neena_{os.getpid()}.sqlite3")}
# Fail fast instead of retrying for minutes when a test forgets to start the broker.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_MAX_RETRIES = 2

# The MCP servers from the package index the tests run (requirements-dev.txt), by their paths in this environment.
NEENA_MCP_STDIO_COMMANDS = [str(Path(sys.executable).parent / name) for name in ("mcp-server-time", "mcp-server-git")]
