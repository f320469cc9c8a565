"""Sending step jobs to the broker, by task name, so services need not import the tasks module.

Steps of the built-in ``core`` integration go to the orchestration queue (they are quick and local); steps that
call an external service go to the integrations queue, so slow APIs never hold up orchestration.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from django.conf import settings
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
    """One job per step, with the step's own time limit (soft, then hard a little later).

    A broker that is down does not fail the caller: the step stays readied in the database (``enqueued_at``), and
    the sweeper queues it again once the broker is back. The request that readied it has been committed, so
    answering an error would only invite the client to do it twice.
    """
    for step in steps:
        try:
            _send(step, countdown)
        except (OperationalError, ConnectionError, OSError) as error:
            logger.warning("Could not queue step %s (%s); the sweeper will queue it again.", step.task_run_id, error)


def _send(step: ReadyStep, countdown: float | None) -> None:
    app.send_task(
        EXECUTE_TASK_RUN,
        args=[str(step.task_run_id)],
        queue=step.queue,
        countdown=countdown,
        soft_time_limit=step.time_limit_seconds,
        time_limit=step.time_limit_seconds + 15,
    )
