"""CORS: the original web frontend, a single-page app on another origin, can call the API from a browser.

A browser sends a preflight OPTIONS (no token, ``Access-Control-Request-Method``) before any call with an
``Authorization`` header; it must be answered 200 with the CORS headers, before authentication and whatever the
path's spelling. Only the origins in NEENA_CORS_ALLOWED_ORIGINS get ``Access-Control-Allow-Origin``.
"""

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIClient

from neena.settings import api

pytestmark = pytest.mark.django_db

FRONTEND = "https://app.neena.example"


@pytest.fixture
def frontend_allowed(settings):
    settings.CORS_ALLOWED_ORIGINS = [FRONTEND]


def preflight(path: str, origin: str = FRONTEND, method: str = "PUT"):
    return APIClient().options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type",
    )


@pytest.mark.parametrize("path", ["/api/v1/flows/", "/api/v1/flows", "/api/v1/flow_runs/approve"])
def test_a_preflight_is_answered_without_a_token_whatever_the_spelling(frontend_allowed, path):
    response = preflight(path)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == FRONTEND
    allowed_headers = {header.strip() for header in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key", "x-neena-organization"} <= allowed_headers
    allowed_methods = {method.strip() for method in response["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "POST", "PUT", "DELETE"} <= allowed_methods
    assert "Access-Control-Allow-Credentials" not in response  # bearer tokens, never cookies
    assert response["X-Request-ID"]  # the preflight is still a request the logs can name


def test_another_origin_gets_no_allow_origin(frontend_allowed):
    response = preflight("/api/v1/flows/", origin="https://evil.example")

    assert "Access-Control-Allow-Origin" not in response


def test_no_origin_is_allowed_by_default(monkeypatch, settings):
    monkeypatch.delenv("NEENA_CORS_ALLOWED_ORIGINS", raising=False)
    settings.CORS_ALLOWED_ORIGINS = api._cors_origins("NEENA_CORS_ALLOWED_ORIGINS")

    response = preflight("/api/v1/flows/")

    assert settings.CORS_ALLOWED_ORIGINS == []
    assert "Access-Control-Allow-Origin" not in response


def test_an_answer_to_the_allowed_origin_carries_cors_headers_and_exposes_the_request_id(frontend_allowed, api):
    response = api.get("/api/v1/flows/all", HTTP_ORIGIN=FRONTEND)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == FRONTEND
    exposed = {header.strip().lower() for header in response["Access-Control-Expose-Headers"].split(",")}
    assert {"x-request-id", "retry-after", "www-authenticate"} <= exposed


def test_a_refusal_carries_cors_headers_so_the_app_can_read_it(frontend_allowed):
    response = APIClient().get("/api/v1/flows/all", HTTP_ORIGIN=FRONTEND)

    assert response.status_code == 401
    assert response["Access-Control-Allow-Origin"] == FRONTEND
    assert response.json()["code"] == "not_authenticated"


def test_pages_outside_the_api_get_no_cors(frontend_allowed):
    response = APIClient().get("/admin/login/", HTTP_ORIGIN=FRONTEND)

    assert "Access-Control-Allow-Origin" not in response


def test_a_plain_options_request_is_no_preflight_and_still_answers_405(frontend_allowed, api):
    response = api.options("/api/v1/flows/", HTTP_ORIGIN=FRONTEND)

    assert response.status_code == 405


@pytest.mark.parametrize(
    "value, expected",
    [
        ("", []),
        ("https://app.example.com", ["https://app.example.com"]),
        ("https://a.example.com,http://localhost:5173", ["https://a.example.com", "http://localhost:5173"]),
        ("http://[::1]:5173", ["http://[::1]:5173"]),
    ],
)
def test_the_origins_setting_reads_a_comma_separated_list(monkeypatch, value, expected):
    monkeypatch.setenv("NEENA_CORS_ALLOWED_ORIGINS", value)

    assert api._cors_origins("NEENA_CORS_ALLOWED_ORIGINS") == expected


@pytest.mark.parametrize(
    "value", ["*", "app.example.com", "https://app.example.com/", "https://app.example.com/path", "ftp://x.example"]
)
def test_an_entry_that_is_not_an_origin_stops_start_up(monkeypatch, value):
    monkeypatch.setenv("NEENA_CORS_ALLOWED_ORIGINS", value)

    with pytest.raises(ImproperlyConfigured, match="NEENA_CORS_ALLOWED_ORIGINS"):
        api._cors_origins("NEENA_CORS_ALLOWED_ORIGINS")
