"""Celery jobs of the webhooks: processing a stored trigger run, and the sweeper that re-queues stuck ones."""

from uuid import UUID

import structlog
from celery import shared_task
from django.db import InterfaceError, OperationalError

from apps.core.tasks import NeenaTask
from apps.webhooks.services.processing import trigger_run_process, trigger_runs_sweep


@shared_task(
    base=NeenaTask,
    name="webhooks.process_trigger_run",
    acks_late=True,
    reject_on_worker_lost=True,
    # A database that is briefly unavailable or locked is the one transient failure; the service put the run back
    # to received before raising, so the retry claims it again. Everything else the service records on the run.
    autoretry_for=(OperationalError, InterfaceError),
    max_retries=3,
    retry_backoff=2,
    retry_jitter=True,
)
def process_trigger_run(trigger_run_id: str) -> str | None:
    """Turns the trigger run into a flow run (see ``trigger_run_process``); returns the run's final status."""
    with structlog.contextvars.bound_contextvars(trigger_run_id=trigger_run_id):
        trigger_run = trigger_run_process(trigger_run_id=UUID(trigger_run_id))
    return trigger_run.status if trigger_run is not None else None


@shared_task(base=NeenaTask, name="webhooks.sweep", periodic=True)
def sweep_trigger_runs() -> dict[str, int]:
    report = trigger_runs_sweep()
    return {"requeued_received": report.requeued_received, "requeued_stalled": report.requeued_stalled}
