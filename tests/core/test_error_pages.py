"""JSON errors for every status under /api/ and /o/, whoever answers; Django's HTML pages for the admin and login.

gunicorn's own answers (414, 431, a malformed request) are tested against the real server in test_web_worker.py.
"""

import asyncio
import json
import logging

import pytest
from django.test import Client, override_settings

from apps.core.asgi_body_limit import BodySizeLimit
from apps.core.http_errors import is_api_path
from neena import urls as neena_urls

pytestmark = pytest.mark.django_db

ERROR_URLS = "tests.core.error_urls"


def assert_json_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == code
    assert isinstance(body["detail"], str)
    return body


def assert_html(response, status: int) -> None:
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")


@pytest.fixture
def crashing_client() -> Client:
    """A client that gets the 500 page instead of the exception."""
    return Client(raise_request_exception=False)


@pytest.fixture
def logged_in_client(owner) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    return client


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v1/flows/", True),
        ("/api/schema", True),
        ("/api", True),
        ("/o/token/", True),
        ("/healthz", True),
        ("/admin/", False),
        ("/accounts/login/", False),
        ("/apiary", False),
        ("/", False),
    ],
)
def test_is_api_path(path, expected):
    assert is_api_path(path) is expected


def test_neena_urls_name_the_error_handlers():
    from apps.core import views

    assert neena_urls.handler400 is views.bad_request
    assert neena_urls.handler403 is views.permission_denied
    assert neena_urls.handler404 is views.not_found
    assert neena_urls.handler500 is views.server_error


# --- 404 ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/nope/", "/api/nope", "/o/nope", "/o/nope/"])
def test_unknown_api_path_is_json_404(client, path):
    body = assert_json_error(client.get(path), 404, "not_found")

    assert body["detail"] == "Not found."


@pytest.mark.parametrize("path", ["/accounts/nope/", "/nope/"])
def test_unknown_path_elsewhere_is_html_404(client, path):
    assert_html(client.get(path), 404)


def test_unknown_admin_path_is_html_404(owner):
    owner.is_staff = True
    owner.save()
    client = Client()
    client.force_login(owner)

    assert_html(client.get("/admin/nope/"), 404)


# --- 405 ----------------------------------------------------------------------------------------------------------


def test_wrong_method_on_a_drf_view_is_json_405(api):
    assert_json_error(api.patch("/api/v1/flow_requests", {}, format="json"), 405, "method_not_allowed")


@pytest.mark.parametrize("path", ["/o/token", "/o/token/"])
def test_wrong_method_on_the_token_endpoint_is_json_405(client, path):
    response = client.get(path)

    body = assert_json_error(response, 405, "method_not_allowed")
    assert body["detail"] == 'Method "GET" not allowed.'
    assert response["Allow"] == "POST, OPTIONS"


def test_wrong_method_on_healthz_is_json_405(client):
    response = client.post("/healthz")

    assert_json_error(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def test_token_endpoint_errors_keep_the_oauth2_shape(client):
    response = client.post("/o/token", {"grant_type": "password"})

    assert response.status_code in (400, 401)
    assert "error" in response.json()


# --- 400 ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/users/", "/api/v1/nope", "/o/token", "/healthz"])
def test_bad_host_is_json_400(client, path):
    body = assert_json_error(client.get(path, HTTP_HOST="evil.example"), 400, "bad_host")

    assert "evil.example" not in body["detail"]


@pytest.mark.parametrize("path", ["/admin/", "/accounts/login/"])
def test_bad_host_elsewhere_is_html_400(client, path):
    assert_html(client.get(path, HTTP_HOST="evil.example"), 400)


def test_bad_host_is_logged_as_a_warning_without_traceback(client, caplog):
    with caplog.at_level(logging.INFO, logger="django.security.DisallowedHost"):
        client.get("/api/v1/users/", HTTP_HOST="evil.example")

    records = [record for record in caplog.records if record.name == "django.security.DisallowedHost"]
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    assert records[0].exc_info is None
    assert "evil.example" in records[0].getMessage()


def test_too_many_form_fields_on_the_token_endpoint_is_json_400(client):
    fields = "&".join(f"f{number}=x" for number in range(1100))

    response = client.post("/o/token", fields, content_type="application/x-www-form-urlencoded")

    assert_json_error(response, 400, "bad_request")


# --- 403 ----------------------------------------------------------------------------------------------------------


def test_csrf_failure_on_the_oauth2_consent_form_is_json_403(logged_in_client):
    body = assert_json_error(logged_in_client.post("/o/authorize/", {"allow": "Authorize"}), 403, "csrf_failed")

    assert body["detail"].startswith("CSRF verification failed")


@override_settings(ROOT_URLCONF=ERROR_URLS)
def test_csrf_failure_on_an_api_path_is_json_403(logged_in_client):
    assert_json_error(logged_in_client.post("/api/v1/test-form", {"a": "b"}), 403, "csrf_failed")


def test_csrf_failure_on_the_login_page_is_html_403():
    client = Client(enforce_csrf_checks=True)

    assert_html(client.post("/accounts/login/", {"username": "a", "password": "b"}), 403)


@override_settings(ROOT_URLCONF=ERROR_URLS)
def test_permission_denied_outside_drf_is_json_403_under_the_api(client):
    assert_json_error(client.get("/api/v1/test-forbidden"), 403, "permission_denied")


@override_settings(ROOT_URLCONF=ERROR_URLS)
def test_permission_denied_elsewhere_is_html_403(client):
    assert_html(client.get("/test-forbidden"), 403)


# --- 413 ----------------------------------------------------------------------------------------------------------


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
@pytest.mark.parametrize("path", ["/o/token", "/o/token/"])
def test_oversized_body_on_the_token_endpoint_is_json_413(client, path):
    response = client.post(path, "grant_type=password&x=" + "y" * 200, content_type="application/x-www-form-urlencoded")

    assert_json_error(response, 413, "request_too_large")


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
def test_oversized_body_without_the_slash_is_json_413(api):
    response = api.post("/api/v1/flow_requests", {"request_instructions": "x" * 200}, format="json")

    assert_json_error(response, 413, "request_too_large")


def run_asgi(app, scope: dict, messages: list[dict]) -> tuple[list[dict], list[dict]]:
    """Runs an ASGI app on one request; what it sent, and the messages the wrapped app received."""
    sent: list[dict] = []
    queue = list(messages)

    async def receive():
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent, queue


class RecordingApp:
    """An ASGI app answering 200 with the body it read and the Content-Length it was given."""

    def __init__(self) -> None:
        self.scope: dict | None = None

    async def __call__(self, scope, receive, send):
        self.scope = scope
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


def http_scope(headers: list[tuple[bytes, bytes]]) -> dict:
    return {"type": "http", "method": "POST", "path": "/api/v1/flow_requests", "headers": headers}


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
def test_asgi_chunked_body_past_the_limit_is_json_413_and_never_reaches_django():
    app = RecordingApp()
    chunks = [{"type": "http.request", "body": b"x" * 60, "more_body": True} for _ in range(3)]

    sent, _ = run_asgi(BodySizeLimit(app), http_scope([(b"transfer-encoding", b"chunked")]), chunks)

    assert app.scope is None
    assert sent[0]["status"] == 413
    assert (b"content-type", b"application/json") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["code"] == "request_too_large"


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
def test_asgi_declared_body_past_the_limit_is_413_before_reading_it():
    app = RecordingApp()
    chunks = [{"type": "http.request", "body": b"x" * 101, "more_body": False}]

    sent, unread = run_asgi(BodySizeLimit(app), http_scope([(b"content-length", b"101")]), chunks)

    assert app.scope is None
    assert sent[0]["status"] == 413
    assert unread == chunks


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
def test_asgi_chunked_body_within_the_limit_reaches_django_with_its_length():
    app = RecordingApp()
    chunks = [
        {"type": "http.request", "body": b'{"a":', "more_body": True},
        {"type": "http.request", "body": b' "b"}', "more_body": False},
    ]

    sent, _ = run_asgi(BodySizeLimit(app), http_scope([(b"transfer-encoding", b"chunked")]), chunks)

    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b'{"a": "b"}'
    assert (b"content-length", b"10") in app.scope["headers"]


# --- 500 ----------------------------------------------------------------------------------------------------------


@override_settings(ROOT_URLCONF=ERROR_URLS)
@pytest.mark.parametrize("path", ["/api/v1/test-crash", "/api/v1/test-drf-crash"])
def test_unhandled_error_under_the_api_is_json_500(crashing_client, path):
    body = assert_json_error(crashing_client.get(path), 500, "server_error")

    assert "a bug" not in body["detail"]


@override_settings(ROOT_URLCONF=ERROR_URLS)
def test_unhandled_error_elsewhere_is_html_500(crashing_client):
    assert_html(crashing_client.get("/test-crash"), 500)
