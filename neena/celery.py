"""The Celery application: JSON only, late acknowledgement, tasks discovered from every app's ``tasks.py``.

Time limits and the broker URL are settings (``CELERY_*`` in ``neena.settings.worker``). Three signal receivers wire
the observability in: every published job carries the current request id (``apps.core.request_id``); workers log
through Django's LOGGING (structured, redacted) instead of Celery's own format; and a pool process that exits is
marked dead in the Prometheus multiprocess directory.
"""

import logging.config
import os
from typing import Any

from celery import Celery
from celery.signals import before_task_publish, setup_logging, worker_process_shutdown
from django.conf import settings
from prometheus_client import multiprocess

from apps.core.request_id import request_id_publish

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neena.settings.base")

app = Celery("neena")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)
app.autodiscover_tasks()


@before_task_publish.connect(weak=False)
def _carry_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    request_id_publish(headers=headers)


@setup_logging.connect(weak=False)
def _log_like_django(**kwargs: Any) -> None:
    """With a receiver here, Celery leaves the root logger alone: its lines go through Django's LOGGING."""
    logging.config.dictConfig(settings.LOGGING)


@worker_process_shutdown.connect(weak=False)
def _mark_metrics_process_dead(pid: int | None = None, **kwargs: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and pid:
        multiprocess.mark_process_dead(pid)
