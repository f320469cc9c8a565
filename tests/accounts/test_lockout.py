"""Login lockout: NEENA_LOGIN_FAILURE_LIMIT failures of one email (or OAuth2 client id) from one address lock that
pair out with 429 for NEENA_LOGIN_LOCKOUT_MINUTES, at the admin's login, the OAuth2 server's login page, /o/token/
and /o/revoke_token/; other addresses and other accounts are not affected, and a success clears the count."""

import base64
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from axes.models import AccessAttempt
from django.core.cache import cache
from django.test import AsyncClient, Client
from django.utils import timezone
from oauth2_provider.models import Application
from redis.exceptions import ConnectionError as RedisConnectionError

from apps.accounts.models import User

pytestmark = pytest.mark.django_db

PASSWORD = "the-right-password"
LIMIT = 5  # NEENA_LOGIN_FAILURE_LIMIT's default
LOGIN_PAGES = ["/admin/login/", "/accounts/login/"]


@pytest.fixture(autouse=True)
def _fresh_counters():
    cache.clear()  # the client counters live in the (per-process) test cache
    yield
    cache.clear()


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_user("staff@example.com", PASSWORD, is_staff=True)


def login(path: str, email: str, password: str, address: str = "10.0.0.1"):
    return Client(REMOTE_ADDR=address).post(path, {"username": email, "password": password})


@pytest.mark.parametrize("path", LOGIN_PAGES)
def test_failed_logins_lock_out_the_email_from_that_address(staff, path):
    failures = [login(path, "staff@example.com", "wrong") for _ in range(LIMIT - 1)]
    last_failure = login(path, "Staff@Example.com", "wrong")  # the same account, however it is written
    locked = login(path, "staff@example.com", PASSWORD)  # even the right password, now

    assert [response.status_code for response in failures] == [200] * (LIMIT - 1)  # the form, with its error
    assert last_failure.status_code == 429
    assert locked.status_code == 429
    assert locked["Retry-After"] == str(15 * 60)
    assert "Too many failed logins" in locked.content.decode()
    assert "_auth_user_id" not in locked.client.session
    # Another address is not locked out with it, so nobody can lock someone out from elsewhere.
    assert login(path, "staff@example.com", PASSWORD, address="10.0.0.2").status_code == 302


def test_the_lockout_ends_after_the_lockout_minutes(staff):
    for _ in range(LIMIT):
        login("/admin/login/", "staff@example.com", "wrong")
    assert login("/admin/login/", "staff@example.com", PASSWORD).status_code == 429

    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    assert login("/admin/login/", "staff@example.com", PASSWORD).status_code == 302


def test_a_successful_login_clears_the_count(staff):
    for _ in range(LIMIT - 1):
        login("/admin/login/", "staff@example.com", "wrong")
    assert login("/admin/login/", "staff@example.com", PASSWORD).status_code == 302
    for _ in range(LIMIT - 1):
        login("/admin/login/", "staff@example.com", "wrong")

    assert login("/admin/login/", "staff@example.com", PASSWORD).status_code == 302


def test_the_lockout_answers_429_under_the_asgi_handler_too(staff):
    """gunicorn serves Django through its ASGI handler, where django-axes' middleware runs its async branch."""
    client = AsyncClient(REMOTE_ADDR="10.0.0.3")

    async def attempts() -> list[int]:
        codes = []
        for password in ["wrong"] * LIMIT + [PASSWORD]:
            response = await client.post("/admin/login/", {"username": "staff@example.com", "password": password})
            codes.append(response.status_code)
        return codes

    assert async_to_sync(attempts)() == [200] * (LIMIT - 1) + [429, 429]


@pytest.fixture
def application(owner) -> Application:
    return Application.objects.create(
        name="Reporting",
        user=owner,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret="s3cret-s3cret",
    )


def token_request(application: Application, secret: str, address: str = "10.0.0.1", basic: bool = False):
    client = Client(REMOTE_ADDR=address)
    if basic:
        credentials = base64.b64encode(f"{application.client_id}:{secret}".encode()).decode()
        return client.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Basic {credentials}")
    return client.post(
        "/o/token/",
        {"grant_type": "client_credentials", "client_id": application.client_id, "client_secret": secret},
    )


@pytest.mark.parametrize("basic", [False, True], ids=["form", "basic"])
def test_failed_client_authentications_lock_out_the_client_id_from_that_address(application, basic):
    failures = [token_request(application, "wrong", basic=basic) for _ in range(LIMIT)]
    locked = token_request(application, "s3cret-s3cret", basic=basic)

    assert [response.status_code for response in failures] == [401] * LIMIT
    assert failures[0].json()["error"] == "invalid_client"
    assert locked.status_code == 429
    assert locked.json()["code"] == "client_locked_out"
    assert 0 < int(locked["Retry-After"]) <= 15 * 60
    assert token_request(application, "s3cret-s3cret", address="10.0.0.2", basic=basic).status_code == 200


def test_a_successful_client_authentication_clears_the_count(application):
    for _ in range(LIMIT - 1):
        token_request(application, "wrong")
    assert token_request(application, "s3cret-s3cret").status_code == 200
    for _ in range(LIMIT - 1):
        token_request(application, "wrong")

    assert token_request(application, "s3cret-s3cret").status_code == 200


def test_revocation_counts_client_failures_too(application):
    client = Client(REMOTE_ADDR="10.0.0.1")
    body = {"token": "anything", "client_id": application.client_id, "client_secret": "wrong"}

    answers = [client.post("/o/revoke_token/", body).status_code for _ in range(LIMIT + 1)]

    assert answers == [401] * LIMIT + [429]


def test_an_unavailable_cache_does_not_stop_client_authentication(application, monkeypatch):
    def unavailable(*args, **kwargs):
        raise RedisConnectionError("no cache")

    for name in ("get", "add", "incr", "set", "delete"):
        monkeypatch.setattr(cache, name, unavailable)

    assert token_request(application, "wrong").status_code == 401
    assert token_request(application, "s3cret-s3cret").status_code == 200
