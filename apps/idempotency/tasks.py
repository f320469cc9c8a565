"""Celery jobs of the idempotency keys: the periodic sweep of expired keys."""

from celery import shared_task

from apps.core.tasks import NeenaTask
from apps.idempotency.services import idempotency_keys_sweep


@shared_task(base=NeenaTask, name="idempotency.sweep", periodic=True)
def sweep_idempotency_keys() -> dict[str, int]:
    return {"deleted": idempotency_keys_sweep()}
