"""gunicorn settings for the web server (`gunicorn neena.asgi:application --config gunicorn.conf.py`).

`make run`, the Docker image and docker-compose.yml all start the web server with this file. Tuned through
environment variables, like the rest of Neena: NEENA_WEB_BIND, NEENA_WEB_WORKERS, NEENA_WEB_TIMEOUT_SECONDS,
NEENA_WEB_KEEPALIVE_SECONDS.

Why the ASGI worker: many deployments put no proxy in front of Neena, so the web server itself must hold up against
clients that open connections and send their headers slowly. gunicorn's sync and gthread workers read a request's
headers on a worker thread, so a few hundred such clients occupy every thread and the service stops answering.
gunicorn's `asgi` worker parses HTTP on an asyncio event loop: an idle or dribbling connection costs a few kilobytes,
not a thread, and a complete request reaches Django at once. Django runs its (synchronous) views in one thread per
worker process, the same concurrency per process as the sync worker; the MCP endpoint will want the event loop too.
"""

import multiprocessing
import os
from typing import Any

from prometheus_client import multiprocess

# All interfaces by default: inside a container, the published port is the boundary.
bind = os.environ.get("NEENA_WEB_BIND", "0.0.0.0:8000")
# gunicorn's `asgi` worker, with the errors gunicorn answers itself (414, 431, a malformed request) written as the
# API's JSON instead of plain text (neena/web_worker.py).
worker_class = "neena.web_worker.JSONErrorASGIWorker"
# Two processes per core plus one: each runs one request's Django code at a time while its event loop reads others.
workers = int(os.environ.get("NEENA_WEB_WORKERS", multiprocessing.cpu_count() * 2 + 1))
# Django's ASGI handler has no lifespan protocol; "off" keeps gunicorn from probing for one at every start.
asgi_lifespan = "off"

# A worker silent for this long is restarted; a request is never expected to take longer (planning has its own
# LLM timeout of NEENA_LLM_TIMEOUT_SECONDS, below this).
timeout = int(os.environ.get("NEENA_WEB_TIMEOUT_SECONDS", "60"))
graceful_timeout = 30
# An idle kept-alive connection is closed after this long.
keepalive = int(os.environ.get("NEENA_WEB_KEEPALIVE_SECONDS", "5"))
# The request line and each header field are capped (gunicorn's defaults, written out): larger ones answer 414/431.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190

# The documented legacy header `api_key: <token>` contains an underscore. gunicorn drops such headers by default
# (because `api_key` and `api-key` would both become HTTP_API_KEY). Neena's authentication reads HTTP_API_KEY, and
# clients following the public docs send `api_key`, so map it. The ambiguity gunicorn guards against is harmless
# here: both spellings carry the same token, and it is checked like any bearer token.
header_map = "dangerous"

# gunicorn's control socket (gunicornc) defaults to one path under $HOME or $XDG_RUNTIME_DIR, shared by every
# gunicorn of the user: a second instance (a test server, a second checkout) would take it over. Nothing uses it.
control_socket_disable = True

# Logs go to the process's output: access log to stdout, errors to stderr. gunicorn's own error log keeps gunicorn's
# format; Django's lines (structured, NEENA_LOG_FORMAT) go to stderr as well.
accesslog = "-"
errorlog = "-"
# The access log names the method and the path, never the query string, the request line or the referrer (gunicorn's
# default format has them all): a URL can carry a secret (a token a client put in `?access_token=`, which the API
# refuses but cannot un-send, or a provider's `?code=&state=`), and a log is read by more people than the API is.
# Then the status, the bytes sent, the duration in milliseconds and the request id (the answer's X-Request-ID), which
# ties the line to Django's structured lines for the same request.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms %({x-request-id}o)s'


def child_exit(server: Any, worker: Any) -> None:
    """A web worker exited: Prometheus' multiprocess mode drops its live gauges (its counters and histograms stay
    in PROMETHEUS_MULTIPROC_DIR and are still summed, so totals never go backwards)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
