"""gunicorn settings for the production web server (`gunicorn neena.wsgi:application --config gunicorn.conf.py`).

Tuned through environment variables, like the rest of Neena: NEENA_WEB_BIND and NEENA_WEB_WORKERS.
"""

import multiprocessing
import os

# All interfaces by default: inside a container, the published port is the boundary.
bind = os.environ.get("NEENA_WEB_BIND", "0.0.0.0:8000")
# The usual starting point for sync workers: two per core plus one.
workers = int(os.environ.get("NEENA_WEB_WORKERS", multiprocessing.cpu_count() * 2 + 1))

# The documented legacy header `api_key: <token>` contains an underscore. gunicorn drops such headers by default
# (since 22.0, because `api_key` and `api-key` would both become HTTP_API_KEY). Neena's authentication reads
# HTTP_API_KEY, and clients following the public docs send `api_key`, so map it. The ambiguity gunicorn guards
# against is harmless here: both spellings carry the same token, and it is checked like any bearer token.
header_map = "dangerous"

# Logs go to the container's output: access log to stdout, errors to stderr.
accesslog = "-"
errorlog = "-"
