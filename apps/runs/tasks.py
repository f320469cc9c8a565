"""Celery jobs of the run engine: steps, and the periodic sweeper. Each takes ids and calls services."""

from uuid import UUID

from celery import shared_task
from django.conf import settings

from apps.core.tasks import NeenaTask
from apps.runs.services.control import runs_sweep
from apps.runs.services.step_execution import task_runs_execute


@shared_task(base=NeenaTask, bind=True, name="runs.execute_task_run", acks_late=True, reject_on_worker_lost=True)
def execute_task_run(self: NeenaTask, task_run_id: str, *more_task_run_ids: str) -> None:
    """Runs the job's steps, and core steps they ready, in place; see ``task_runs_execute``."""
    # Steps run in place share this job's time limit (its steps' longest): stay well inside half of it.
    _, soft_limit = self.request.timelimit or (None, None)
    task_runs_execute(
        task_run_ids=[UUID(task_run_id), *(UUID(more) for more in more_task_run_ids)],
        time_limit_seconds=soft_limit or settings.CELERY_TASK_SOFT_TIME_LIMIT,
    )


@shared_task(base=NeenaTask, name="runs.sweep", periodic=True)
def sweep_runs() -> dict[str, int]:
    report = runs_sweep()
    return {
        "requeued_dead": report.requeued_dead,
        "failed_dead": report.failed_dead,
        "requeued_lost": report.requeued_lost,
        "approvals_decided": report.approvals_decided,
        "advanced_stalled": report.advanced_stalled,
    }
