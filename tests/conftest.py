"""Personas and API clients.

Personas: ``owner`` (with a personal organization), ``teammate`` (a member of the owner's organization) and
``outsider`` (another organization entirely). Clients: one per way of authenticating, each holding a token.
"""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.test import override_settings
from rest_framework.test import APIClient

from apps.accounts.models import Organization, User
from apps.accounts.services import api_key_create
from neena.celery import app as celery_app
from neena.embedded_redis import EmbeddedRedis
from tests.factories import UserFactory, add_member, personal_organization
from tests.workers import CeleryWorker

ALL_SCOPES = ("read", "write", "approve")


@pytest.fixture
def owner(db: None) -> User:
    return UserFactory(email="owner@example.com", full_name="Olive Owner")


@pytest.fixture
def organization(owner: User) -> Organization:
    return personal_organization(owner)


@pytest.fixture
def teammate(organization: Organization) -> User:
    user = UserFactory(email="teammate@example.com")
    add_member(user, organization)
    return user


@pytest.fixture
def outsider(db: None) -> User:
    return UserFactory(email="outsider@example.com")


@pytest.fixture
def outsider_organization(outsider: User) -> Organization:
    return personal_organization(outsider)


@pytest.fixture
def make_client() -> Callable[..., APIClient]:
    """``make_client(user, scopes=..., header="bearer"|"api_key"|"bare")``: a client sending a fresh token that way."""

    def make(user: User, scopes: tuple[str, ...] = ALL_SCOPES, header: str = "bearer") -> APIClient:
        token = api_key_create(user=user, scopes=scopes)
        client = APIClient()
        if header == "bearer":
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        elif header == "api_key":
            client.credentials(HTTP_API_KEY=token)
        else:
            client.credentials(HTTP_AUTHORIZATION=token)
        return client

    return make


@pytest.fixture
def api(owner: User, make_client: Callable[..., APIClient]) -> APIClient:
    """The owner's client, with every scope."""
    return make_client(owner)


@pytest.fixture
def outsider_api(outsider: User, make_client: Callable[..., APIClient]) -> APIClient:
    return make_client(outsider)


@pytest.fixture
def teammate_api(teammate: User, make_client: Callable[..., APIClient]) -> APIClient:
    return make_client(teammate)


@pytest.fixture(scope="session", autouse=True)
def redis_server() -> Iterator[EmbeddedRedis]:
    """One real Redis server for the whole session, and the broker of every job the tests queue."""
    server = EmbeddedRedis()
    celery_app.conf.broker_url = server.url
    with override_settings(CELERY_BROKER_URL=server.url, REDIS_URL=server.url):
        yield server
    server.stop()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup: None, django_db_blocker: Any, redis_server: EmbeddedRedis) -> Iterator[CeleryWorker]:
    """A real Celery worker (two pool processes) on the test database and the session's Redis."""
    with django_db_blocker.unblock():
        worker = CeleryWorker(broker_url=redis_server.url, name="suite")
    yield worker
    worker.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    redis.Redis.from_url(redis_server.url).flushdb()
    return redis_server.url
