"""Structured logs: JSON lines in production, the redaction of secrets (tested end to end: a token-authenticated
request, a credential stored, webhook deliveries with their signatures, all with every logger at DEBUG), and a bad
Host header logged as a warning without a traceback."""

import io
import json
import logging
import os
import subprocess
import sys

import pytest
import structlog
from rest_framework.test import APIClient

from apps.accounts.services import api_key_create
from apps.core.structured_logs import REDACTED, ClientErrorFilter, formatter, redact_secrets
from tests.webhooks.signing import create_operation, deliver, zendesk_headers, zendesk_ticket_created
from tests.workers import ROOT

CREDENTIAL_SECRET = "zd-api-key-very-secret-4711"


@pytest.fixture
def captured():
    """Every log line written, as the production JSON formatter writes it, with the root logger and every logger
    that has a level of its own at DEBUG."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter("json"))
    root = logging.getLogger()
    loggers = [root, *(logging.getLogger(name) for name in logging.root.manager.loggerDict)]
    levels = [(logger, logger.level) for logger in loggers if isinstance(logger, logging.Logger)]
    root.addHandler(handler)
    for logger, _ in levels:
        logger.setLevel(logging.DEBUG)
    security = logging.getLogger("django.security.DisallowedHost")
    security.addFilter(ClientErrorFilter())  # as LOGGING does; the test settings' logging may have been replaced
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    security.removeFilter(security.filters[-1])
    for logger, level in levels:
        logger.setLevel(level)
    root.removeHandler(handler)


def test_every_line_is_one_json_object_with_the_bound_context(captured):
    structlog.contextvars.bind_contextvars(request_id="r-1", run_id="run-1", step_id="step-1")
    try:
        logging.getLogger("apps.runs").info("Step %s done", "core Format Text")
        structlog.get_logger("apps.native").info("native event", attempt=2)
    finally:
        structlog.contextvars.clear_contextvars()

    stdlib, native = captured()[-2:]
    assert stdlib["event"] == "Step core Format Text done"
    assert {key: stdlib[key] for key in ("level", "logger", "request_id", "run_id", "step_id")} == {
        "level": "info",
        "logger": "apps.runs",
        "request_id": "r-1",
        "run_id": "run-1",
        "step_id": "step-1",
    }
    assert "timestamp" in stdlib
    assert native["event"] == "native event" and native["attempt"] == 2 and native["request_id"] == "r-1"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"event": "x", "token": "abc"}, {"event": "x", "token": REDACTED}),
        (
            {"event": "x", "api_key": "abc", "Authorization": "abc"},
            {"event": "x", "api_key": REDACTED, "Authorization": REDACTED},
        ),
        (
            {"event": "x", "headers": {"X-Signature": "s", "Accept": "a"}},
            {"event": "x", "headers": {"X-Signature": REDACTED, "Accept": "a"}},
        ),
        ({"event": "sent Bearer abc.def-123 to it"}, {"event": f"sent Bearer {REDACTED} to it"}),
        (
            {"event": "GET /1/cards?key=k1&token=t1&idList=5"},
            {"event": f"GET /1/cards?key={REDACTED}&token={REDACTED}&idList=5"},
        ),
        (
            # The request line as Django's development server logs it (django.server): a token put in the URL.
            {"event": '"GET /api/v1/users/?access_token=neena_abc-123&limit=5 HTTP/1.1" 401 197'},
            {"event": f'"GET /api/v1/users/?access_token={REDACTED}&limit=5 HTTP/1.1" 401 197'},
        ),
        ({"event": "auth Basic dXNlcjpwYXNz"}, {"event": f"auth Basic {REDACTED}"}),
        (
            {"event": "Basic authentication failed", "password_hint": "x"},
            {"event": "Basic authentication failed", "password_hint": REDACTED},
        ),
        (
            {"event": "step ended", "run_id": "r", "status": "completed"},
            {"event": "step ended", "run_id": "r", "status": "completed"},
        ),
    ],
)
def test_redaction(event, expected):
    assert redact_secrets(None, "info", event) == expected


def test_a_secret_in_an_exception_is_masked(captured):
    try:
        raise RuntimeError("upstream refused Bearer sk-live-abcdef")
    except RuntimeError:
        logging.getLogger("apps.integrations").exception("Call failed")
    line = captured()[-1]
    assert "sk-live-abcdef" not in json.dumps(line)
    assert "RuntimeError" in line["exception"]


@pytest.mark.django_db
def test_tokens_and_secrets_never_appear_in_any_log_line(captured, owner, monkeypatch):
    monkeypatch.setattr("apps.webhooks.services.receiving.send_trigger_run", lambda trigger_run_id: None)
    token = api_key_create(user=owner, scopes=("read", "write", "approve"))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    legacy = APIClient()
    legacy.credentials(HTTP_API_KEY=token)

    assert api.get("/api/v1/users/").status_code == 200
    assert legacy.get("/api/v1/flows/all").status_code == 200
    assert APIClient().get("/api/v1/users/", HTTP_AUTHORIZATION="Bearer not-a-real-token-9876").status_code == 401
    assert APIClient().get(f"/api/v1/users/?access_token={token}").status_code == 401
    stored = api.post(
        "/api/v1/integration_credentials/",
        {"integration_short_name": "zendesk", "api_key": CREDENTIAL_SECRET, "config": {"subdomain": "acme"}},
        format="json",
    )
    assert stored.status_code == 200, stored.content
    operation = create_operation(api)
    body = json.dumps(zendesk_ticket_created()).encode()
    good = zendesk_headers(operation["signing_secret"], body)
    bad = zendesk_headers("wrong-secret", body)
    client = APIClient()
    assert deliver(client, operation, zendesk_ticket_created(), headers=good).status_code == 202
    assert deliver(client, operation, zendesk_ticket_created(), headers=bad).status_code == 401
    assert api.get("/metrics").status_code == 200

    text = "\n".join(json.dumps(line) for line in captured())
    assert "Unauthorized" in text  # the refusals were logged, so the lines were captured
    for secret in (
        token,
        "not-a-real-token-9876",
        CREDENTIAL_SECRET,
        operation["signing_secret"],
        good["X-Zendesk-Webhook-Signature"],
        bad["X-Zendesk-Webhook-Signature"],
    ):
        assert secret not in text


def test_a_bad_host_header_is_a_warning_without_a_traceback(captured):
    response = APIClient().get("/healthz", HTTP_HOST="evil.example")

    assert response.status_code == 400
    (line,) = [line for line in captured() if line["logger"] == "django.security.DisallowedHost"]
    assert line["level"] == "warning"
    assert "exception" not in line and "Traceback" not in json.dumps(line)
    assert line["request_id"] == response["X-Request-ID"]


def _settings_value(module, name, **environment):
    code = f"import django; django.setup(); from django.conf import settings; print(settings.{name})"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": module, "PYTHONPATH": str(ROOT), **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip(), result.stderr


def test_production_logs_json_and_development_console():
    production = {
        "DJANGO_SECRET_KEY": "x" * 50,
        "NEENA_ENCRYPTION_KEYS": "L_k4ZQ3IERxIptfpDdNvOWyKFVsDDV3VVgziCCZpM3c=",
        "DJANGO_ALLOWED_HOSTS": "localhost",
    }
    assert _settings_value("neena.settings.production", "NEENA_LOG_FORMAT", **production)[0] == "json"
    assert (
        _settings_value("neena.settings.production", "NEENA_LOG_FORMAT", NEENA_LOG_FORMAT="console", **production)[0]
        == "console"
    )
    assert _settings_value("neena.settings.base", "NEENA_LOG_FORMAT")[0] == "console"


def test_an_unknown_log_format_is_refused():
    with pytest.raises(ValueError, match="NEENA_LOG_FORMAT"):
        formatter("xml")
