"""The task base every Celery job uses: binds the request id and the job into the log context, logs each job with
its duration."""

import logging
import time
from typing import Any

from celery import Task

from apps.core.request_id import TASK_HEADER, request_id_bound, request_id_current, request_id_new

logger = logging.getLogger("neena.tasks")


class NeenaTask(Task):
    """Runs each job inside its request's log context and logs its end and duration; a job's arguments are ids, so
    the log says what it worked on.

    The request id comes from the message (``apps.core.request_id.request_id_publish`` put it there when the job was
    queued); a job run eagerly, in the process that queued it, keeps that process's current id; any other job (beat's
    sweepers, a job sent from a shell) gets a fresh one. Every log line the job writes, its own and the engine's,
    then carries ``request_id``, ``task`` and ``task_id``; the engine adds ``run_id`` and ``step_id`` per step.

    A periodic job (``periodic = True``: beat's sweepers) logs its end at DEBUG when its result reports no work done
    (every count zero), so an idle platform writes nothing every interval; a sweep that acted is logged at INFO with
    its counts.
    """

    periodic = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        request_id = getattr(self.request, TASK_HEADER, None) or request_id_current() or request_id_new()
        task_id = getattr(self.request, "id", None)
        with request_id_bound(str(request_id), task=self.name, task_id=task_id):
            result: Any = None
            try:
                result = super().__call__(*args, **kwargs)
                return result
            finally:
                elapsed_ms = (time.monotonic() - started) * 1000
                if self.periodic:
                    level = logging.INFO if _did_work(result) else logging.DEBUG
                    logger.log(level, "%s took %.1f ms: %s", self.name, elapsed_ms, result)
                else:
                    logger.info("%s%s took %.1f ms", self.name, list(args), elapsed_ms)


def _did_work(result: Any) -> bool:
    """Whether a periodic job's report counts anything (a report is a dict of counts; anything else counts as work)."""
    if isinstance(result, dict):
        return any(result.values())
    return result is not None
