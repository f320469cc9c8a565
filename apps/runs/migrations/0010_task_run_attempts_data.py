"""Task runs started before attempts were kept get one attempt each, from what their row still says, so that the
timeline of an existing run is not empty: when it started, how and when it ended (or that it is still running), its
error, and the idempotency key it ran with. Earlier attempts of the same step (retries, re-queues) were never
recorded and cannot be recovered. Steps not started, or back to pending (waiting for a retry, or approved and not
yet run), get none: their next claim starts attempt 1. Reversing deletes the attempts so made.
"""

from django.db import migrations
from django.db.models import Exists, OuterRef

BATCH = 2000
# A task run's status -> the status of the attempt it was in.
ATTEMPT_OF = {
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
    "awaiting_approval": "awaiting_approval",
    "preparing": "running",
    "in_progress": "running",
}
BACKFILLED = "backfilled"  # the attempts' created_by_email, so that reversing deletes only these


def forwards(apps, schema_editor):
    task_run_model = apps.get_model("runs", "TaskRun")
    attempt_model = apps.get_model("runs", "TaskRunAttempt")
    started = (
        task_run_model.objects.filter(start_time__isnull=False, status__in=list(ATTEMPT_OF))
        .exclude(Exists(attempt_model.objects.filter(task_run_id=OuterRef("pk"))))
        .values_list("id", "status", "start_time", "end_time", "modified_date", "error", "attempt")
        .order_by("id")
    )
    batch = []
    for task_run_id, status, start_time, end_time, modified_date, error, attempt in started.iterator(BATCH):
        running = ATTEMPT_OF[status] == "running"
        batch.append(
            attempt_model(
                task_run_id=task_run_id,
                number=1,
                status=ATTEMPT_OF[status],
                started_at=start_time,
                # A parked step ended its attempt when it parked: its row's last change.
                ended_at=None if running else (end_time or modified_date),
                error=error if status == "failed" else "",
                idempotency_key=f"{task_run_id}:{attempt}",
                created_by_email=BACKFILLED,
            )
        )
        if len(batch) >= BATCH:
            attempt_model.objects.bulk_create(batch)
            batch = []
    attempt_model.objects.bulk_create(batch)


def backwards(apps, schema_editor):
    apps.get_model("runs", "TaskRunAttempt").objects.filter(created_by_email=BACKFILLED).delete()


class Migration(migrations.Migration):
    dependencies = [("runs", "0009_task_run_attempts")]

    operations = [migrations.RunPython(forwards, backwards)]
