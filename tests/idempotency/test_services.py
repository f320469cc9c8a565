"""The idempotency-key services: claiming, storing, taking over, releasing, sweeping, and two requests at once."""

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.services import api_key_create
from apps.core.exceptions import ConflictError, InputValidationError
from apps.idempotency.models import IdempotencyKey
from apps.idempotency.services import (
    IdempotencyClaim,
    IdempotentReplay,
    idempotency_fingerprint,
    idempotency_key_claim,
    idempotency_key_complete,
    idempotency_key_release,
    idempotency_keys_sweep,
)
from apps.idempotency.tasks import sweep_idempotency_keys
from apps.runs.models import FlowRun
from apps.runs.services import run_creation
from tests.runs.flows import make_flow, make_request, step


def _claim(organization, user, key="k", fingerprint="f" * 64, now=None):
    return idempotency_key_claim(
        organization=organization, user=user, key=key, fingerprint=fingerprint, method="POST", path="/x", now=now
    )


@pytest.mark.django_db
def test_a_completed_key_is_replayed_with_its_status_and_body(owner, organization):
    claim = _claim(organization, owner)
    assert isinstance(claim, IdempotencyClaim)
    assert idempotency_key_complete(claim=claim, status=200, body='{"id":"1"}')

    assert _claim(organization, owner) == IdempotentReplay(status=200, body='{"id":"1"}')


@pytest.mark.django_db
def test_another_fingerprint_is_refused_while_running_and_once_answered(owner, organization):
    claim = _claim(organization, owner)

    with pytest.raises(InputValidationError) as refused:
        _claim(organization, owner, fingerprint="e" * 64)
    with pytest.raises(ConflictError) as running:
        _claim(organization, owner)
    idempotency_key_complete(claim=claim, status=200, body="{}")
    with pytest.raises(InputValidationError):
        _claim(organization, owner, fingerprint="e" * 64)

    assert refused.value.items[0].type == "idempotency_key_reused"
    assert running.value.code == "idempotency_key_in_progress"


@pytest.mark.django_db
def test_a_taken_over_claim_can_neither_store_nor_release(owner, organization):
    first = _claim(organization, owner)
    later = timezone.now() + timedelta(seconds=settings.NEENA_IDEMPOTENCY_CLAIM_SECONDS + 1)
    second = _claim(organization, owner, now=later)
    assert isinstance(first, IdempotencyClaim) and isinstance(second, IdempotencyClaim)
    assert second.key_id == first.key_id and second.token != first.token

    assert not idempotency_key_complete(claim=first, status=200, body='{"first":true}')
    idempotency_key_release(claim=first)

    row = IdempotencyKey.objects.get()
    assert (row.claim, row.response_status) == (second.token, None)
    assert idempotency_key_complete(claim=second, status=200, body="{}")


@pytest.mark.django_db
def test_a_fresh_claim_is_not_taken_over_and_an_answer_is_kept_for_the_ttl(owner, organization):
    claim = _claim(organization, owner)
    soon = timezone.now() + timedelta(seconds=settings.NEENA_IDEMPOTENCY_CLAIM_SECONDS - 5)
    with pytest.raises(ConflictError):
        _claim(organization, owner, now=soon)
    idempotency_key_complete(claim=claim, status=200, body="{}")

    within = timezone.now() + timedelta(hours=settings.NEENA_IDEMPOTENCY_TTL_HOURS) - timedelta(minutes=1)
    after = timezone.now() + timedelta(hours=settings.NEENA_IDEMPOTENCY_TTL_HOURS, minutes=1)
    assert isinstance(_claim(organization, owner, now=within), IdempotentReplay)
    assert isinstance(_claim(organization, owner, fingerprint="e" * 64, now=after), IdempotencyClaim)


@pytest.mark.django_db
def test_a_released_key_is_free(owner, organization):
    claim = _claim(organization, owner)
    idempotency_key_release(claim=claim)

    assert not IdempotencyKey.objects.exists()
    assert isinstance(_claim(organization, owner, fingerprint="e" * 64), IdempotencyClaim)


@pytest.mark.django_db
def test_the_fingerprint_covers_user_method_path_query_and_body(owner, outsider):
    base = {"user": owner, "method": "POST", "path": "/api/v1/flows/", "query_string": "a=1", "body": b"{}"}
    fingerprint = idempotency_fingerprint(**base)

    assert idempotency_fingerprint(**{**base, "path": "/api/v1/flows"}) == fingerprint
    for change in ({"user": outsider}, {"method": "PUT"}, {"path": "/api/v1/x/"}, {"query_string": "a=2"}):
        assert idempotency_fingerprint(**{**base, **change}) != fingerprint
    assert idempotency_fingerprint(**{**base, "body": b"{ }"}) != fingerprint


@pytest.mark.django_db
def test_the_sweep_deletes_expired_keys_only(owner, organization):
    expired = _claim(organization, owner, key="old")
    _claim(organization, owner, key="new")
    IdempotencyKey.objects.filter(id=expired.key_id).update(
        created_date=timezone.now() - timedelta(hours=settings.NEENA_IDEMPOTENCY_TTL_HOURS, seconds=1)
    )

    assert sweep_idempotency_keys.apply().get() == {"deleted": 1}
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    assert idempotency_keys_sweep() == 0


def test_beat_runs_the_sweep():
    assert settings.CELERY_BEAT_SCHEDULE["sweep-idempotency-keys"]["task"] == sweep_idempotency_keys.name


# --- two at once -------------------------------------------------------------------------------------------------


def _in_threads(*targets):
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(3))
def test_of_two_concurrent_claims_exactly_one_wins(owner, organization, attempt):
    barrier = threading.Barrier(2)
    outcomes = []

    def claim():
        try:
            barrier.wait()
            outcomes.append(type(_claim(organization, owner)).__name__)
        except ConflictError as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    _in_threads(claim, claim)

    assert sorted(outcomes) == ["IdempotencyClaim", "idempotency_key_in_progress"]
    assert IdempotencyKey.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_executes_at_once_with_one_key_run_once(owner, monkeypatch):
    """The second request arrives while the first is creating its run: it is answered 409 (PostgreSQL), or waits for
    SQLite's write lock and gets the replay; either way one run exists."""
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: None)
    flow = make_flow(owner, [step(0, "Format Text", template="x")], [])
    flow_request = make_request(owner)
    path = f"/api/v1/flows/execute?flow_id={flow.id}&flow_request_id={flow_request.id}"
    running = threading.Event()
    real_execute = run_creation.flow_execute

    def slow_execute(**kwargs):
        running.set()
        time.sleep(0.5)
        return real_execute(**kwargs)

    monkeypatch.setattr("apps.flows.views.flow_execute", slow_execute)
    token = api_key_create(user=owner, scopes=("read", "write"))
    key = str(uuid.uuid4())
    responses = {}

    def send(name, wait_for=None):
        try:
            if wait_for is not None:
                wait_for.wait(timeout=10)
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
            responses[name] = client.post(path, HTTP_IDEMPOTENCY_KEY=key)
        finally:
            connection.close()

    _in_threads(lambda: send("first"), lambda: send("second", wait_for=running))

    first, second = responses["first"], responses["second"]
    assert first.status_code == 200
    if second.status_code == 200:
        assert second["Idempotent-Replayed"] == "true"
        assert second.content == first.content
    else:
        assert second.status_code == 409
        assert second.json()["code"] == "idempotency_key_in_progress"
    assert FlowRun.objects.count() == 1
    assert IdempotencyKey.objects.get().response_status == 200
