"""The raw Celery baseline of the engine benchmark: a no-op task, chained and in chords, on Neena's own Celery app.

A benchmark worker loads it with ``celery -A neena worker --include bench.celery_baseline``, so it runs in the same
worker, on the same broker, with the same settings (JSON, late acknowledgement, prefetch 1) as the engine's jobs.
"""

import time
from typing import Any

import redis
from celery import Task

from neena.celery import app

NOOP = "bench.noop"


class BaselineTask(Task):
    """A baseline task that can record when a baseline finished, in Redis on the broker's server."""

    _marks: redis.Redis | None = None

    def mark(self, key: str) -> None:
        """Records the wall-clock time under ``key``, for the benchmark (on the same machine) to read."""
        if self._marks is None:
            type(self)._marks = redis.Redis.from_url(self.app.conf.broker_url)
        assert self._marks is not None  # noqa: S101 - set just above; tells the type checker
        self._marks.set(key, repr(time.time()), ex=3600)


@app.task(base=BaselineTask, bind=True, name=NOOP)
def noop(self: BaselineTask, *results: Any, mark: str = "") -> None:
    """Does nothing (a chord body receives its parts' results, ignored); the last task of a baseline marks the end."""
    if mark:
        self.mark(mark)
