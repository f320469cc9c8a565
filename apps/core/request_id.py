"""The request id: one value per HTTP request (or per job nobody asked for), carried into every Celery job the
request queues, and so into every log line written for it, web or worker, as ``request_id``.

- ``RequestIdMiddleware`` (``apps.core.middleware``) takes the client's ``X-Request-ID`` when it is a sane token
  (``request_id_accept``), else makes one, and echoes it in the response; ``request_id_end`` (connected to Django's
  ``request_finished`` in ``apps.core.apps``) forgets it.
- ``request_id_publish`` (a Celery ``before_task_publish`` receiver, connected in ``neena.celery``) puts the current
  id in the message's headers; it runs in every process that sends jobs, web and worker alike, so the steps a step
  readies keep the id of the request that started the run.
- ``NeenaTask`` (``apps.core.tasks``) binds the id it finds in the message, or a fresh one for a job with none (beat's
  sweepers), while the job runs.

The id lives in a ``contextvars`` variable: each asyncio task and each thread (asgiref's sync_to_async copies the
context) sees its own, so two requests served by one worker process never mix ids.
"""

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import structlog

REQUEST_ID_HEADER = "X-Request-ID"
# The Celery message header that carries the id (custom headers show up as attributes of ``task.request``).
TASK_HEADER = "neena_request_id"
# Client-chosen ids are written into every log line and echoed: letters, digits, dot, underscore and dash only, so
# they cannot forge log lines or headers; long enough for a UUID, a trace id or a proxy's own request id.
_ACCEPTED = re.compile(r"[A-Za-z0-9._-]{1,200}")

_current: ContextVar[str | None] = ContextVar("neena_request_id", default=None)


def request_id_new() -> str:
    return uuid.uuid4().hex


def request_id_accept(candidate: str | None) -> str:
    """The client's id when it is acceptable, else a new one."""
    if candidate and _ACCEPTED.fullmatch(candidate):
        return candidate
    return request_id_new()


def request_id_current() -> str | None:
    return _current.get()


def request_id_begin(request_id: str) -> None:
    """Makes ``request_id`` the current one for the request this thread (or asyncio task) now serves, and the only
    thing in the log context: whatever an earlier request bound is gone.

    Deliberately not undone when the middleware returns: Django logs a 4xx or 5xx answer (``django.request``) after
    the middleware chain has finished, and that line belongs to the request too. ``request_id_end`` clears it when
    the response is closed (Django's ``request_finished``)."""
    _current.set(request_id)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)


def request_id_end(**_: Any) -> None:
    """``request_finished``: the request's id and log context end with it."""
    _current.set(None)
    structlog.contextvars.clear_contextvars()


@contextmanager
def request_id_bound(request_id: str, **log_context: Any) -> Iterator[str]:
    """Makes ``request_id`` current, and binds it (with ``log_context``) into every log line, until the block ends.

    The log context is replaced, not merged: whatever a previous request or job of this thread bound is gone.
    """
    token = _current.set(request_id)
    previous = structlog.contextvars.get_contextvars()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id, **log_context)
    try:
        yield request_id
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(**previous)
        _current.reset(token)


def request_id_publish(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """``before_task_publish``: the job carries the current request id, if there is one (a job queued by beat or a
    shell has none, and its worker gives it a fresh one)."""
    request_id = _current.get()
    if request_id and headers is not None and TASK_HEADER not in headers:
        headers[TASK_HEADER] = request_id
