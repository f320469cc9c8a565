"""Sending step jobs to the broker, by task name, so services need not import the tasks module.

Steps of the built-in ``core`` integration go to the orchestration queue (they are quick and local); steps that
call an external service go to the integrations queue, so slow APIs never hold up orchestration. A step that calls
a service is a job of its own, with its own time limit; ``core`` steps readied together travel in jobs of up to
NEENA_INLINE_STEP_LIMIT steps, which the worker runs one after the other (each claimed on its own), so a wide fan-out
costs a few broker round trips instead of one per step, and still spreads over the worker's processes.
"""

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from django.conf import settings
from django.db import transaction
from kombu.exceptions import OperationalError

from neena.celery import app

logger = logging.getLogger(__name__)

EXECUTE_TASK_RUN = "runs.execute_task_run"


@dataclass(frozen=True)
class ReadyStep:
    """A step whose predecessors are done, claimed for queueing (its ``enqueued_at`` is set)."""

    task_run_id: UUID
    queue: str
    time_limit_seconds: int


def queue_for(integration_short_name: str) -> str:
    return settings.NEENA_ORCHESTRATION_QUEUE if integration_short_name == "core" else settings.NEENA_INTEGRATIONS_QUEUE


def send_steps(steps: Iterable[ReadyStep], *, countdown: float | None = None) -> None:
    """Sends the steps as jobs (see the module's docstring), each with its steps' time limit (soft, then hard a
    little later).

    A broker that is down does not fail the caller: the step stays readied in the database (``enqueued_at``), and
    the sweeper queues it again once the broker is back. The request that readied it has been committed, so
    answering an error would only invite the client to do it twice.
    """
    for job in _jobs(list(steps)):
        try:
            _send(job, countdown)
        except (OperationalError, ConnectionError, OSError) as error:
            logger.warning(
                "Could not queue step(s) %s (%s); the sweeper will queue them again.",
                ", ".join(str(step.task_run_id) for step in job),
                error,
            )


def _jobs(steps: list[ReadyStep]) -> list[list[ReadyStep]]:
    local = [step for step in steps if step.queue == settings.NEENA_ORCHESTRATION_QUEUE]
    jobs = [[step] for step in steps if step.queue != settings.NEENA_ORCHESTRATION_QUEUE]
    count = math.ceil(len(local) / max(1, settings.NEENA_INLINE_STEP_LIMIT))
    # Dealt out in turn: the jobs differ by at most one step, and each keeps the steps' order.
    return jobs + [local[number::count] for number in range(count)]


def _send(job: list[ReadyStep], countdown: float | None) -> None:
    time_limit = max(step.time_limit_seconds for step in job)
    app.send_task(
        EXECUTE_TASK_RUN,
        args=[str(step.task_run_id) for step in job],
        queue=job[0].queue,
        countdown=countdown,
        soft_time_limit=time_limit,
        time_limit=time_limit + 15,
    )


def ready_steps_send(steps: list[ReadyStep]) -> None:
    """Sends readied steps to the broker only once the current transaction has committed: a worker never looks for a
    row that is not there yet."""
    if steps:
        transaction.on_commit(lambda: send_steps(steps))
