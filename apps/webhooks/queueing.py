"""Sending trigger-run jobs to the broker, by task name, so services need not import the tasks module."""

import logging
from uuid import UUID

from django.conf import settings
from kombu.exceptions import OperationalError

from neena.celery import app

logger = logging.getLogger(__name__)

PROCESS_TRIGGER_RUN = "webhooks.process_trigger_run"


def send_trigger_run(trigger_run_id: UUID) -> None:
    """Queues the processing of a stored trigger run on the orchestration queue (planning is local work).

    A broker that is down does not fail the caller: the delivery is already stored and acknowledged; the run stays
    received, and the trigger-run sweeper (or the integration's own retry of the delivery) queues it again.
    """
    try:
        app.send_task(PROCESS_TRIGGER_RUN, args=[str(trigger_run_id)], queue=settings.NEENA_ORCHESTRATION_QUEUE)
    except (OperationalError, ConnectionError, OSError) as error:
        logger.warning("Could not queue trigger run %s (%s); it will be queued again.", trigger_run_id, error)
