"""Personas and API clients.

Personas: ``owner`` (with a personal organization), ``teammate`` (a member of the owner's organization) and
``outsider`` (another organization entirely). Clients: one per way of authenticating, each holding a token; JWTs come
from ``oidc_issuer``, a local OIDC issuer configured as the deployment's.

Every test runs under the network guard (``tests/network_guard.py``): an outbound connection made while the code under
test holds a transaction open fails it, in this process and in the Celery workers the tests start.
"""

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.cache import cache
from django.test import override_settings
from rest_framework.test import APIClient

from apps.accounts.models import Organization, User
from apps.accounts.oidc import key_cache_clear
from apps.accounts.services import api_key_create
from neena.celery import app as celery_app
from neena.embedded_redis import EmbeddedRedis
from tests import network_guard
from tests.factories import UserFactory, add_member, personal_organization
from tests.fakes.oidc_issuer import AUDIENCE, FakeOIDCIssuer, SigningKeys
from tests.workers import CeleryWorker

ALL_SCOPES = ("read", "write", "approve")

# Where the worker processes the tests start report what their network guard finds (tests/celery_main.py).
NETWORK_GUARD_REPORTS = Path(tempfile.mkdtemp(prefix="neena-network-guard-"))


def pytest_configure(config: pytest.Config) -> None:
    os.environ[network_guard.REPORT_DIR_VARIABLE] = str(NETWORK_GUARD_REPORTS)
    network_guard.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(NETWORK_GUARD_REPORTS, ignore_errors=True)


def _fail_on_network_in_transaction(item: pytest.Item) -> None:
    """Fails the test with every outbound connection made inside a transaction since the last check."""
    found = network_guard.take(NETWORK_GUARD_REPORTS)
    if found and item.get_closest_marker("network_in_transaction_allowed") is None:
        pytest.fail("\n\n".join(violation.message() for violation in found), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After the test body (and its fixtures' setup): what the guard found fails the test."""
    result = yield
    _fail_on_network_in_transaction(item)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """What fixtures' teardown (or a worker still busy with the test's jobs) did is reported as the test's error."""
    result = yield
    _fail_on_network_in_transaction(item)
    return result


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


@pytest.fixture(scope="session")
def oidc_issuer_server() -> Iterator[FakeOIDCIssuer]:
    """One local issuer for the session, with key pairs generated for it (RSA generation is slow)."""
    issuer = FakeOIDCIssuer(SigningKeys())
    yield issuer
    issuer.stop()


@pytest.fixture
def oidc_issuer(oidc_issuer_server: FakeOIDCIssuer) -> Iterator[FakeOIDCIssuer]:
    """The local issuer as NEENA_OIDC_ISSUER (audience ``AUDIENCE``), publishing ``rsa-1`` and ``ec-1``, with nothing
    of it remembered by Neena (keys, discovery, fetch limits) before or after the test."""
    oidc_issuer_server.reset()
    key_cache_clear()
    cache.clear()
    with override_settings(NEENA_OIDC_ISSUER=oidc_issuer_server.url, NEENA_OIDC_AUDIENCE=AUDIENCE):
        yield oidc_issuer_server
    key_cache_clear()
    cache.clear()


@pytest.fixture
def jwt_client() -> Callable[[str], APIClient]:
    """``jwt_client(token)``: a client sending the JWT as its bearer token."""

    def make(token: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make


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
