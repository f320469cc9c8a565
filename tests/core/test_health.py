"""``/healthz`` answers while the process lives; ``/readyz`` checks the database and the broker."""

import pytest
from django.test import override_settings


def test_healthz(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0", NEENA_BROKER_PING_TIMEOUT=0.2)
def test_readyz_is_503_naming_a_broker_that_is_down(client):
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "broker": "down"}


@pytest.mark.django_db
def test_readyz_is_200_when_database_and_broker_answer(client, redis_url):
    with override_settings(CELERY_BROKER_URL=redis_url):
        response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}
