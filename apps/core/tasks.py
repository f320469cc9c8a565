"""The task base every Celery job uses: logs each job with its duration and the request id it ran for."""

import logging
import time
from typing import Any

from celery import Task

logger = logging.getLogger("neena.tasks")


class NeenaTask(Task):
    """Logs start, end and duration of each job; a job's arguments are ids, so the log says what it worked on."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        request_id = getattr(self.request, "id", None)
        try:
            return super().__call__(*args, **kwargs)
        finally:
            logger.info("%s[%s] %s took %.1f ms", self.name, request_id, args, (time.monotonic() - started) * 1000)
