"""``POST /api/v1/webhooks/<operation_id>/``: public, authenticated by each integration's signature over the raw body;
202 for a new event (stored, queued after commit), 200 for a repeated delivery, 401/404/413/422 otherwise."""

import json
import time
import uuid

import pytest
from django.test import override_settings
from kombu.exceptions import OperationalError
from rest_framework.test import APIClient

from apps.webhooks.models import TriggerRun, WebhookTriggerOperation
from apps.webhooks.services import receiving
from tests.webhooks.signing import (
    GENERIC_EVENT,
    GITHUB_ISSUE_OPENED,
    GMAIL_MESSAGE_RECEIVED,
    PAYLOADS,
    SIGNERS,
    SLACK_MESSAGE_POSTED,
    WRONG_SECRET,
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

ALL_TRIGGERS = [
    ZENDESK_TICKET_CREATED,
    SLACK_MESSAGE_POSTED,
    GITHUB_ISSUE_OPENED,
    GENERIC_EVENT,
    GMAIL_MESSAGE_RECEIVED,
]


@pytest.fixture
def anonymous():
    """A client with no token at all: integrations have none."""
    return APIClient()


@pytest.fixture
def sent(monkeypatch):
    """The trigger run ids queued for processing (the broker is not involved)."""
    queued = []
    monkeypatch.setattr(receiving, "send_trigger_run", queued.append)
    return queued


@pytest.mark.parametrize("trigger_name", ALL_TRIGGERS)
def test_a_well_signed_event_is_stored_and_answered_202(
    api, anonymous, sent, trigger_name, django_capture_on_commit_callbacks
):
    operation = create_operation(api, trigger_name)
    payload = PAYLOADS[trigger_name]()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = deliver(anonymous, operation, payload, trigger_name=trigger_name)

    assert response.status_code == 202, response.content
    trigger_run = TriggerRun.objects.get()
    assert response.json() == {"trigger_run_id": str(trigger_run.id)}
    assert trigger_run.payload == payload
    assert trigger_run.status == TriggerRun.Status.RECEIVED
    assert str(trigger_run.operation_id) == operation["id"]
    assert str(trigger_run.organization_id) == operation["organization"]
    # Queued once, and only when the transaction committed.
    assert len(callbacks) == 1
    assert sent == [trigger_run.id]


@pytest.mark.parametrize("trigger_name", ALL_TRIGGERS)
def test_a_signature_made_with_another_secret_is_401(api, anonymous, sent, trigger_name):
    operation = create_operation(api, trigger_name)

    response = deliver(anonymous, operation, PAYLOADS[trigger_name](), trigger_name=trigger_name, secret=WRONG_SECRET)

    assert response.status_code == 401
    assert response.json()["code"] == "signature_invalid"
    assert not TriggerRun.objects.exists()
    assert sent == []


@pytest.mark.parametrize("trigger_name", ALL_TRIGGERS)
def test_a_missing_signature_is_401(api, anonymous, trigger_name):
    operation = create_operation(api, trigger_name)

    response = deliver(anonymous, operation, PAYLOADS[trigger_name](), headers={})

    assert response.status_code == 401
    assert response.json()["code"] == "signature_missing"
    assert not TriggerRun.objects.exists()


@pytest.mark.parametrize(
    ("trigger_name", "header"),
    [
        (ZENDESK_TICKET_CREATED, "X-Zendesk-Webhook-Signature"),
        (SLACK_MESSAGE_POSTED, "X-Slack-Signature"),
        (GITHUB_ISSUE_OPENED, "X-Hub-Signature-256"),
        (GENERIC_EVENT, "webhook-signature"),
    ],
)
def test_a_signature_over_another_body_is_401(api, anonymous, trigger_name, header):
    """The signature covers the raw body: a tampered body (or a re-serialised one) does not verify."""
    operation = create_operation(api, trigger_name)
    payload = PAYLOADS[trigger_name]()
    headers = SIGNERS[trigger_name](operation["signing_secret"], body_of(payload))

    tampered = deliver(anonymous, operation, json.dumps(payload, indent=1).encode(), headers=headers)

    assert tampered.status_code == 401
    assert header in headers


def test_slack_signature_with_a_stale_timestamp_is_401(api, anonymous):
    operation = create_operation(api, SLACK_MESSAGE_POSTED)
    body = body_of(PAYLOADS[SLACK_MESSAGE_POSTED]())
    # A minute clear of the 300 s window on each side: a loaded machine may take seconds between signing and checking.
    stale = slack_headers(operation["signing_secret"], body, timestamp=int(time.time()) - 360)
    future = slack_headers(operation["signing_secret"], body, timestamp=int(time.time()) + 360)
    recent = slack_headers(operation["signing_secret"], body, timestamp=int(time.time()) - 240)

    assert deliver(anonymous, operation, body, headers=stale).status_code == 401
    assert deliver(anonymous, operation, body, headers=future).status_code == 401
    assert deliver(anonymous, operation, body, headers=recent).status_code == 202


def test_slack_timestamp_that_is_not_a_number_is_401(api, anonymous):
    operation = create_operation(api, SLACK_MESSAGE_POSTED)
    body = body_of(PAYLOADS[SLACK_MESSAGE_POSTED]())
    headers = {**slack_headers(operation["signing_secret"], body), "X-Slack-Request-Timestamp": "yesterday"}

    assert deliver(anonymous, operation, body, headers=headers).status_code == 401


@override_settings(NEENA_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS=10)
def test_slack_tolerance_is_the_setting(api, anonymous):
    operation = create_operation(api, SLACK_MESSAGE_POSTED)
    body = body_of(PAYLOADS[SLACK_MESSAGE_POSTED]())

    headers = slack_headers(operation["signing_secret"], body, timestamp=int(time.time()) - 60)

    assert deliver(anonymous, operation, body, headers=headers).status_code == 401


def test_slack_url_verification_is_answered_with_its_challenge_once_signed(api, anonymous, sent):
    operation = create_operation(api, SLACK_MESSAGE_POSTED)
    challenge = {
        "token": "legacy",
        "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        "type": "url_verification",
    }

    unsigned = deliver(anonymous, operation, challenge, headers={})
    forged = deliver(anonymous, operation, challenge, trigger_name=SLACK_MESSAGE_POSTED, secret="forged")
    signed = deliver(anonymous, operation, challenge, trigger_name=SLACK_MESSAGE_POSTED)

    assert unsigned.status_code == forged.status_code == 401
    assert signed.status_code == 200
    assert signed.json() == {"challenge": challenge["challenge"]}
    assert not TriggerRun.objects.exists()
    assert sent == []


def test_unknown_inactive_and_failed_operations_are_the_same_404(api, anonymous, organization):
    inactive = create_operation(api, status="inactive")
    failed = create_operation(api)
    WebhookTriggerOperation.objects.filter(id=failed["id"]).update(status=WebhookTriggerOperation.Status.FAILED)
    unknown = {**inactive, "id": str(uuid.uuid4())}
    payload = PAYLOADS[ZENDESK_TICKET_CREATED]()

    answers = [deliver(anonymous, operation, payload) for operation in (unknown, inactive, failed)]

    assert [answer.status_code for answer in answers] == [404, 404, 404]
    assert answers[0].json() == answers[1].json() == answers[2].json() == {"detail": "Not found.", "code": "not_found"}
    assert not TriggerRun.objects.exists()


def test_a_malformed_operation_id_is_404(anonymous):
    response = anonymous.post("/api/v1/webhooks/not-a-uuid/", b"{}", content_type="application/json")

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "kind", "location"),
    [
        (b'{"ticket": {"id": 1,', "json_invalid", ["body"]),
        (b"\xff\xfe not utf-8", "json_invalid", ["body"]),
        (b'{"ticket": NaN}', "json_invalid", ["body"]),
        (b'[{"ticket": {"id": 1}}]', "object_expected", ["body"]),
        (b'"just text"', "object_expected", ["body"]),
        (
            b'{"ticket": {"description": "nul \\u0000 here"}}',
            "null_characters_not_allowed",
            ["body", "ticket", "description"],
        ),
        (
            b'{"ticket": {"tags": ["ok", "lone \\ud800 surrogate"]}}',
            "surrogate_characters_not_allowed",
            ["body", "ticket", "tags", 1],
        ),
        (b'{"ticket": ' + b"[" * 64 + b"]" * 64 + b"}", "json_too_deep", ["body", "ticket"] + [0] * 63),
        (b"[" * 100_000, "json_too_deep", ["body"]),
    ],
)
def test_a_signed_body_that_is_not_a_json_object_is_422(api, anonymous, body, kind, location):
    operation = create_operation(api)

    response = deliver(anonymous, operation, body)

    assert response.status_code == 422
    (item,) = response.json()["detail"]
    assert item["loc"] == location
    assert item["type"] == kind
    assert not TriggerRun.objects.exists()


def test_an_unsigned_malformed_body_is_401_not_422(api, anonymous):
    """Nothing about the payload is told to a sender that cannot sign."""
    operation = create_operation(api)

    assert deliver(anonymous, operation, b"{not json", headers={}).status_code == 401


@override_settings(NEENA_WEBHOOK_MAX_BODY_BYTES=512)
def test_a_body_over_the_limit_is_413_before_anything_else(api, anonymous):
    operation = create_operation(api)
    payload = PAYLOADS[ZENDESK_TICKET_CREATED](description="x" * 600)

    signed = deliver(anonymous, operation, payload)
    unsigned = deliver(anonymous, operation, payload, headers={})
    unknown = deliver(anonymous, {**operation, "id": str(uuid.uuid4())}, payload)

    assert signed.status_code == unsigned.status_code == unknown.status_code == 413
    assert signed.json()["code"] == "request_too_large"
    assert not TriggerRun.objects.exists()


@override_settings(NEENA_WEBHOOK_MAX_BODY_BYTES=512)
def test_the_size_limit_holds_without_a_content_length(api):
    """A body that declares no length (chunked) is measured once read."""
    operation = create_operation(api)
    body = body_of(PAYLOADS[ZENDESK_TICKET_CREATED](description="x" * 600))

    with pytest.raises(receiving.PayloadTooLargeError):
        receiving.delivery_receive(
            operation_id=uuid.UUID(operation["id"]),
            body=body,
            headers=zendesk_headers(operation["signing_secret"], body),
        )


@pytest.mark.parametrize(
    "trigger_name", [ZENDESK_TICKET_CREATED, SLACK_MESSAGE_POSTED, GITHUB_ISSUE_OPENED, GENERIC_EVENT]
)
def test_a_repeated_delivery_is_200_without_a_second_run(api, anonymous, sent, trigger_name):
    operation = create_operation(api, trigger_name)
    body = body_of(PAYLOADS[trigger_name]())
    headers = SIGNERS[trigger_name](operation["signing_secret"], body)

    first = deliver(anonymous, operation, body, headers=headers)
    again = deliver(anonymous, operation, body, headers=headers)

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json() == {"trigger_run_id": first.json()["trigger_run_id"], "duplicate": True}
    assert TriggerRun.objects.count() == 1


def test_delivery_ids_come_from_the_signed_header_or_the_body_hash(api, anonymous):
    generic = create_operation(api, GENERIC_EVENT)
    github = create_operation(api, GITHUB_ISSUE_OPENED)
    zendesk = create_operation(api, ZENDESK_TICKET_CREATED)
    generic_body = body_of(PAYLOADS[GENERIC_EVENT]())
    github_body = body_of(PAYLOADS[GITHUB_ISSUE_OPENED]())

    deliver(
        anonymous,
        generic,
        generic_body,
        headers=standard_headers(generic["signing_secret"], generic_body, delivery="msg_1"),
    )
    deliver(
        anonymous, github, github_body, headers=github_headers(github["signing_secret"], github_body, delivery="d-1")
    )
    deliver(anonymous, zendesk, PAYLOADS[ZENDESK_TICKET_CREATED]())

    assert TriggerRun.objects.get(operation_id=generic["id"]).delivery_id == "msg_1"
    # GitHub does not sign X-GitHub-Delivery, so its deliveries are told apart by their signed body.
    assert TriggerRun.objects.get(operation_id=github["id"]).delivery_id.startswith("sha256:")
    assert TriggerRun.objects.get(operation_id=zendesk["id"]).delivery_id.startswith("sha256:")


def test_the_same_body_with_new_delivery_ids_is_two_events(api, anonymous):
    operation = create_operation(api, GENERIC_EVENT)
    body = body_of(PAYLOADS[GENERIC_EVENT]())

    for delivery in ("a", "b"):
        response = deliver(
            anonymous, operation, body, headers=standard_headers(operation["signing_secret"], body, delivery=delivery)
        )
        assert response.status_code == 202

    assert TriggerRun.objects.count() == 2


def test_the_same_delivery_id_on_two_operations_is_two_events(api, anonymous):
    first, second = create_operation(api, GENERIC_EVENT), create_operation(api, GENERIC_EVENT)
    body = body_of(PAYLOADS[GENERIC_EVENT]())

    for operation in (first, second):
        headers = standard_headers(operation["signing_secret"], body, delivery="same")
        assert deliver(anonymous, operation, body, headers=headers).status_code == 202


def test_an_overlong_delivery_id_is_422(api, anonymous):
    operation = create_operation(api, GENERIC_EVENT)
    body = body_of(PAYLOADS[GENERIC_EVENT]())

    response = deliver(
        anonymous, operation, body, headers=standard_headers(operation["signing_secret"], body, delivery="d" * 256)
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "webhook-id"]


def test_tokens_play_no_part(api, anonymous, outsider_api):
    """No token is needed, and any token sent (even another organization's, or garbage) changes nothing."""
    operation = create_operation(api, GENERIC_EVENT)

    garbage = APIClient()
    garbage.credentials(HTTP_AUTHORIZATION="Bearer nonsense")

    assert deliver(garbage, operation, PAYLOADS[GENERIC_EVENT]("a"), trigger_name=GENERIC_EVENT).status_code == 202
    assert deliver(outsider_api, operation, PAYLOADS[GENERIC_EVENT]("b"), trigger_name=GENERIC_EVENT).status_code == 202


def test_the_answer_is_json_whatever_the_client_accepts(api, anonymous):
    operation = create_operation(api, GENERIC_EVENT)
    body = body_of(PAYLOADS[GENERIC_EVENT]())
    meta = {
        "HTTP_" + k.upper().replace("-", "_"): v for k, v in standard_headers(operation["signing_secret"], body).items()
    }

    response = anonymous.generic(
        "POST",
        f"/api/v1/webhooks/{operation['id']}/",
        body,
        content_type="application/json",
        HTTP_ACCEPT="text/html",
        **meta,
    )

    assert response.status_code == 202
    assert response["Content-Type"] == "application/json"


def test_a_rotated_secret_replaces_the_old_one_at_once(api, anonymous):
    operation = create_operation(api, GENERIC_EVENT)
    old_secret = operation["signing_secret"]
    new_secret = api.post(f"/api/v1/webhook_trigger_operations/rotate_secret?id={operation['id']}").json()[
        "signing_secret"
    ]

    old = deliver(anonymous, operation, PAYLOADS[GENERIC_EVENT]("a"), trigger_name=GENERIC_EVENT, secret=old_secret)
    new = deliver(anonymous, operation, PAYLOADS[GENERIC_EVENT]("b"), trigger_name=GENERIC_EVENT, secret=new_secret)

    assert old.status_code == 401
    assert new.status_code == 202


def test_an_event_is_stored_even_when_the_broker_is_down(
    api, anonymous, monkeypatch, django_capture_on_commit_callbacks
):
    """Acknowledged means stored: the run waits in received, and the integration's retry of the delivery queues it
    again."""
    operation = create_operation(api, GENERIC_EVENT)
    attempts = []

    def broker_down(*args, **kwargs):
        attempts.append(args)
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("apps.webhooks.queueing.app.send_task", broker_down)
    body = body_of(PAYLOADS[GENERIC_EVENT]())
    headers = standard_headers(operation["signing_secret"], body)

    with django_capture_on_commit_callbacks(execute=True):
        first = deliver(anonymous, operation, body, headers=headers)
    with django_capture_on_commit_callbacks(execute=True):
        retried = deliver(anonymous, operation, body, headers=headers)

    assert first.status_code == 202
    assert retried.status_code == 200
    assert TriggerRun.objects.get().status == TriggerRun.Status.RECEIVED
    assert len(attempts) == 2  # the retried delivery queued the waiting run again


def test_a_repeated_delivery_of_a_run_already_taken_is_not_queued_again(
    api, anonymous, sent, django_capture_on_commit_callbacks
):
    operation = create_operation(api, GENERIC_EVENT)
    body = body_of(PAYLOADS[GENERIC_EVENT]())
    headers = standard_headers(operation["signing_secret"], body)
    with django_capture_on_commit_callbacks(execute=True):
        deliver(anonymous, operation, body, headers=headers)
    TriggerRun.objects.update(status=TriggerRun.Status.COMPLETED)

    with django_capture_on_commit_callbacks(execute=True):
        deliver(anonymous, operation, body, headers=headers)

    assert len(sent) == 1
