"""Replays: a captured delivery sent again, or sent late, starts nothing.

The generic integration (and the Gmail relay) sign with Standard Webhooks: the signature covers the delivery id and a
timestamp, so a replay under a new id does not verify, one under its own id is a duplicate, and a late one is outside
the window. Slack and Zendesk sign a timestamp, refused outside the same window. GitHub signs neither an id nor a
timestamp: its deliveries are deduplicated on the signed body, so a replay under a new X-GitHub-Delivery is a
duplicate.
"""

import base64
import importlib
import time
from datetime import UTC, datetime

import pytest
from django.apps import apps as django_apps
from rest_framework.test import APIClient
from standardwebhooks.webhooks import Webhook

from apps.credentials.encryption import encrypt_json
from apps.webhooks.models import TriggerRun, WebhookTriggerOperation
from apps.webhooks.services import operations
from tests.factories import trigger_definition
from tests.webhooks.signing import (
    GENERIC_EVENT,
    GITHUB_ISSUE_OPENED,
    GMAIL_MESSAGE_RECEIVED,
    PAYLOADS,
    SIGNERS,
    SLACK_MESSAGE_POSTED,
    ZENDESK_TICKET_CREATED,
    body_of,
    create_operation,
    deliver,
    github_headers,
    slack_headers,
    standard_headers,
    zendesk_headers,
)

pytestmark = pytest.mark.django_db

STANDARD_TRIGGERS = [GENERIC_EVENT, GMAIL_MESSAGE_RECEIVED]
STALE = {"detail": "The delivery's timestamp is outside the 300 s window.", "code": "stale_delivery"}


@pytest.fixture
def anonymous():
    return APIClient()


def _iso(unix_time: float) -> str:
    return datetime.fromtimestamp(unix_time, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Standard Webhooks (generic integration, Gmail relay) -----------------------------------------------------------


@pytest.mark.parametrize("trigger_name", STANDARD_TRIGGERS)
def test_a_captured_delivery_replayed_under_a_new_id_is_401_and_starts_nothing(api, anonymous, trigger_name):
    operation = create_operation(api, trigger_name)
    body = body_of(PAYLOADS[trigger_name]())
    captured = SIGNERS[trigger_name](operation["signing_secret"], body)
    delivery_header = "webhook-id"

    first = deliver(anonymous, operation, body, headers=captured)
    replayed = deliver(anonymous, operation, body, headers={**captured, delivery_header: "msg_replayed"})

    assert first.status_code == 202, first.content
    assert replayed.status_code == 401
    assert replayed.json()["code"] == "signature_invalid"
    assert TriggerRun.objects.count() == 1


@pytest.mark.parametrize("trigger_name", STANDARD_TRIGGERS)
def test_a_captured_delivery_replayed_under_its_own_id_is_a_duplicate(api, anonymous, trigger_name):
    operation = create_operation(api, trigger_name)
    body = body_of(PAYLOADS[trigger_name]())
    captured = standard_headers(operation["signing_secret"], body)

    first = deliver(anonymous, operation, body, headers=captured)
    replayed = deliver(anonymous, operation, body, headers=captured)

    assert first.status_code == 202
    assert replayed.status_code == 200
    assert replayed.json() == {"trigger_run_id": first.json()["trigger_run_id"], "duplicate": True}
    assert TriggerRun.objects.get().delivery_id == captured["webhook-id"]


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_stale_or_future_standard_delivery_is_401_with_the_reason(api, anonymous, offset):
    operation = create_operation(api, GENERIC_EVENT)
    body = body_of(PAYLOADS[GENERIC_EVENT]())
    late = standard_headers(operation["signing_secret"], body, timestamp=int(time.time()) + offset)

    response = deliver(anonymous, operation, body, headers=late)

    assert response.status_code == 401
    assert response.json() == STALE
    assert not TriggerRun.objects.exists()


def test_a_delivery_inside_the_window_is_accepted(api, anonymous):
    operation = create_operation(api, GENERIC_EVENT)
    body = body_of(PAYLOADS[GENERIC_EVENT]())
    recent = standard_headers(operation["signing_secret"], body, timestamp=int(time.time()) - 250)

    assert deliver(anonymous, operation, body, headers=recent).status_code == 202


def test_a_signed_timestamp_cannot_be_changed(api, anonymous):
    """Moving a stale delivery's timestamp into the window breaks its signature."""
    operation = create_operation(api, GENERIC_EVENT)
    body = body_of(PAYLOADS[GENERIC_EVENT]())
    stale = standard_headers(operation["signing_secret"], body, timestamp=int(time.time()) - 3600)

    response = deliver(anonymous, operation, body, headers={**stale, "webhook-timestamp": str(int(time.time()))})

    assert response.status_code == 401
    assert response.json()["code"] == "signature_invalid"


def test_missing_standard_headers_are_named(api, anonymous):
    operation = create_operation(api, GENERIC_EVENT)
    body = body_of(PAYLOADS[GENERIC_EVENT]())
    signed = standard_headers(operation["signing_secret"], body)

    response = deliver(anonymous, operation, body, headers={"webhook-signature": signed["webhook-signature"]})

    assert response.status_code == 401
    assert response.json() == {
        "detail": "The webhook-id, webhook-timestamp headers are missing.",
        "code": "signature_missing",
    }


def test_the_old_neena_signature_is_refused(api, anonymous):
    """X-Neena-Signature (an HMAC of the body alone) no longer authenticates anything."""
    import hashlib
    import hmac

    operation = create_operation(api, GENERIC_EVENT)
    body = body_of(PAYLOADS[GENERIC_EVENT]())
    signature = "sha256=" + hmac.new(operation["signing_secret"].encode(), body, hashlib.sha256).hexdigest()

    response = deliver(anonymous, operation, body, headers={"X-Neena-Signature": signature, "X-Neena-Delivery": "d"})

    assert response.status_code == 401
    assert response.json()["code"] == "signature_missing"


@pytest.mark.parametrize("trigger_name", STANDARD_TRIGGERS)
def test_standard_operations_get_a_whsec_secret_on_create_and_rotate(api, trigger_name):
    created = create_operation(api, trigger_name)
    rotated = api.post(f"/api/v1/webhook_trigger_operations/rotate_secret?id={created['id']}").json()

    for secret in (created["signing_secret"], rotated["signing_secret"]):
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert created["signing_secret"] != rotated["signing_secret"]


def test_a_given_secret_that_is_not_whsec_is_422_for_a_standard_operation(api):
    response = api.post(
        "/api/v1/webhook_trigger_operations/",
        {
            "name": "Orders",
            "webhook_trigger_definition": str(trigger_definition(GENERIC_EVENT).id),
            "template_body": "Summarize <{text}>.",
            "signing_secret": "plain-text-secret",
        },
        format="json",
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "secret_invalid"


def test_the_migration_keeps_an_old_secrets_key_bytes(api, anonymous):
    """An operation made under the old scheme keeps its key: its secret S becomes whsec_ + base64(S), so a sender
    holding S signs with those bytes."""
    migration = importlib.import_module("apps.webhooks.migrations.0003_standard_webhooks_secrets")
    operation = WebhookTriggerOperation.objects.get(id=create_operation(api, GENERIC_EVENT)["id"])
    definition = operation.webhook_trigger_definition
    type(definition).objects.filter(id=definition.id).update(signature_scheme="neena_hmac_sha256")
    old_secret = "old-token-urlsafe-secret-of-the-operation"
    WebhookTriggerOperation.objects.filter(id=operation.id).update(
        signing_secret_ciphertext=encrypt_json({"signing_secret": old_secret})
    )

    migration.forwards(django_apps, None)

    operation.refresh_from_db()
    definition.refresh_from_db()
    assert definition.signature_scheme == "standard_webhooks"
    assert operations.trigger_operation_secret(operation=operation) == (
        "whsec_" + base64.b64encode(old_secret.encode()).decode()
    )
    body = body_of(PAYLOADS[GENERIC_EVENT]())
    now = int(time.time())
    signature = Webhook(old_secret.encode()).sign("msg_1", datetime.fromtimestamp(now, tz=UTC), body)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": signature}
    assert deliver(anonymous, {"id": str(operation.id)}, body, headers=headers).status_code == 202

    migration.backwards(django_apps, None)
    operation.refresh_from_db()
    assert operations.trigger_operation_secret(operation=operation) == old_secret


# --- Zendesk and Slack: the signed timestamp's window ---------------------------------------------------------------


@pytest.mark.parametrize("offset", [-301, 301, -86_400 * 30])
def test_a_zendesk_delivery_outside_the_window_is_401_with_the_reason(api, anonymous, offset):
    operation = create_operation(api, ZENDESK_TICKET_CREATED)
    body = body_of(PAYLOADS[ZENDESK_TICKET_CREATED]())
    late = zendesk_headers(operation["signing_secret"], body, timestamp=_iso(time.time() + offset))

    response = deliver(anonymous, operation, body, headers=late)

    assert response.status_code == 401
    assert response.json() == STALE
    assert not TriggerRun.objects.exists()


def test_a_zendesk_delivery_inside_the_window_is_accepted(api, anonymous):
    operation = create_operation(api, ZENDESK_TICKET_CREATED)
    body = body_of(PAYLOADS[ZENDESK_TICKET_CREATED]())
    recent = zendesk_headers(operation["signing_secret"], body, timestamp=_iso(time.time() - 250))

    assert deliver(anonymous, operation, body, headers=recent).status_code == 202


def test_a_zendesk_timestamp_that_is_not_iso_8601_is_401(api, anonymous):
    operation = create_operation(api, ZENDESK_TICKET_CREATED)
    body = body_of(PAYLOADS[ZENDESK_TICKET_CREATED]())

    response = deliver(
        anonymous, operation, body, headers=zendesk_headers(operation["signing_secret"], body, timestamp="yesterday")
    )

    assert response.status_code == 401
    assert response.json()["code"] == "signature_invalid"


def test_a_stale_slack_delivery_says_why(api, anonymous):
    operation = create_operation(api, SLACK_MESSAGE_POSTED)
    body = body_of(PAYLOADS[SLACK_MESSAGE_POSTED]())
    stale = slack_headers(operation["signing_secret"], body, timestamp=int(time.time()) - 301)

    response = deliver(anonymous, operation, body, headers=stale)

    assert response.status_code == 401
    assert response.json() == STALE


# --- GitHub: no timestamp, dedupe on the signed body ----------------------------------------------------------------


def test_a_github_delivery_replayed_under_a_new_delivery_id_is_a_duplicate(api, anonymous):
    operation = create_operation(api, GITHUB_ISSUE_OPENED)
    body = body_of(PAYLOADS[GITHUB_ISSUE_OPENED]())
    captured = github_headers(operation["signing_secret"], body, delivery="guid-1")

    first = deliver(anonymous, operation, body, headers=captured)
    replayed = deliver(anonymous, operation, body, headers={**captured, "X-GitHub-Delivery": "guid-forged"})

    assert first.status_code == 202
    assert replayed.status_code == 200
    assert replayed.json()["duplicate"] is True
    assert TriggerRun.objects.count() == 1
