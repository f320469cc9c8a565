"""Celery jobs of the run engine: one step per job, and the periodic sweeper. Each takes ids and calls services."""

import time
from uuid import UUID

from celery import shared_task
from django.conf import settings

from apps.core.tasks import NeenaTask
from apps.runs.queueing import send_steps
from apps.runs.services.control import runs_sweep
from apps.runs.services.execution import task_run_execute


@shared_task(base=NeenaTask, bind=True, name="runs.execute_task_run", acks_late=True, reject_on_worker_lost=True)
def execute_task_run(self: NeenaTask, task_run_id: str) -> None:
    """Runs a step, then runs just-readied core steps in place (bounded) and queues everything else.

    Running a readied step here instead of queueing it saves a broker round trip per step; it is safe because every
    step is claimed atomically whoever runs it. Steps calling external services always go through their queue, so
    they get their own time limit and worker pool.
    """
    started = time.monotonic()
    # Inline steps share this job's own time limit (the first step's): stay well inside half of it.
    _, soft_limit = self.request.timelimit or (None, None)
    time_budget = (soft_limit or settings.CELERY_TASK_SOFT_TIME_LIMIT) / 2
    outcome = task_run_execute(task_run_id=UUID(task_run_id))
    budget = settings.NEENA_INLINE_STEP_LIMIT
    while True:
        if outcome.retry:
            send_steps([outcome.retry], countdown=outcome.retry_in)
        inline = next(
            (step for step in outcome.ready if step.queue == settings.NEENA_ORCHESTRATION_QUEUE),
            None,
        )
        if inline is None or budget <= 0 or time.monotonic() - started > time_budget:
            send_steps(outcome.ready)
            return
        send_steps([step for step in outcome.ready if step is not inline])
        budget -= 1
        outcome = task_run_execute(task_run_id=inline.task_run_id)


@shared_task(base=NeenaTask, name="runs.sweep")
def sweep_runs() -> dict[str, int]:
    report = runs_sweep()
    return {
        "requeued_dead": report.requeued_dead,
        "requeued_lost": report.requeued_lost,
        "approvals_decided": report.approvals_decided,
    }
