"""The Celery application: JSON only, late acknowledgement, tasks discovered from every app's ``tasks.py``.

Time limits and the broker URL are settings (``CELERY_*`` in ``neena.settings.base``)."""

import os

from celery import Celery

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
