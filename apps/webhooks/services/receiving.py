"""Receiving an inbound delivery: verify it, store it as a trigger run, queue its processing, answer at once.

The order matters. Size first (nothing large is read), then the operation (its secret is needed), then the
signature (nothing about the payload is told to an unsigned sender), then the JSON. The verified payload is stored
before anything that can fail for reasons of Neena's own (planning, credentials, the broker): an event, once
acknowledged, is never lost, and a broken planner only fails its trigger run.
"""

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction

from apps.core.exceptions import ApplicationError, InputValidationError, NotFoundError
from apps.core.metrics import record_webhook_delivery
from apps.core.parsers import checked_json, too_deep
from apps.credentials.encryption import DecryptionError
from apps.integrations.connectors.base import SignatureScheme
from apps.webhooks.exceptions import PayloadTooLargeError, SecretUnavailableError
from apps.webhooks.models import TriggerRun, WebhookTriggerOperation
from apps.webhooks.queueing import send_trigger_run
from apps.webhooks.selectors import trigger_operation_for_delivery
from apps.webhooks.services.operations import trigger_operation_secret
from apps.webhooks.signatures import delivery_id_for, lowercase_headers, signature_verify

MAX_DELIVERY_ID_LENGTH = TriggerRun._meta.get_field("delivery_id").max_length or 255


@dataclass(frozen=True)
class DeliveryOutcome:
    """What the inbound endpoint answers: a new trigger run (202), a repeated delivery (200, the existing run), or
    Slack's URL verification challenge (200, no run)."""

    trigger_run_id: UUID | None = None
    created: bool = False
    challenge: str | None = None


def _reject_nan(constant: str) -> Any:
    raise ValueError(f"{constant} is not valid JSON")


def _payload(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; 422 with the documented detail list otherwise.

    NaN and Infinity (which Python would accept) are refused here, and, as in every API body (``checked_json``), NUL
    characters and lone surrogates (which cannot be stored) and nesting deeper than NEENA_MAX_JSON_DEPTH, so storing
    the payload cannot fail later.
    """
    try:
        payload = json.loads(body.decode("utf-8"), parse_constant=_reject_nan)
    except RecursionError:
        raise too_deep() from None
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InputValidationError.single(["body"], f"The body is not valid JSON: {error}", "json_invalid") from None
    if not isinstance(payload, dict):
        raise InputValidationError.single(["body"], "The body must be a JSON object.", "object_expected")
    return dict(checked_json(payload))


def _operation_verified(
    *, operation_id: UUID, body: bytes, headers: Mapping[str, str], now: float
) -> WebhookTriggerOperation:
    """The active operation the delivery is addressed to, once its signature is checked with the operation's secret."""
    operation = trigger_operation_for_delivery(operation_id=operation_id)
    if operation is None:
        raise NotFoundError("Not found.")
    try:
        secret = trigger_operation_secret(operation=operation)
    except DecryptionError:
        raise SecretUnavailableError("The operation's secret cannot be read now; try again later.") from None
    signature_verify(
        scheme=operation.webhook_trigger_definition.signature_scheme,
        secret=secret,
        body=body,
        headers=headers,
        now=now,
    )
    return operation


def _delivery_id(*, scheme: str, body: bytes, headers: Mapping[str, str]) -> str:
    delivery_id, header = delivery_id_for(scheme=scheme, body=body, headers=headers)
    if len(delivery_id) > MAX_DELIVERY_ID_LENGTH:
        raise InputValidationError.single(
            ["header", header or "delivery_id"],
            f"The delivery id is longer than {MAX_DELIVERY_ID_LENGTH} characters.",
            "string_too_long",
        )
    return delivery_id


def trigger_run_store(
    *, operation: WebhookTriggerOperation, delivery_id: str, payload: dict[str, Any]
) -> DeliveryOutcome:
    """Stores the delivery as a received trigger run and queues it once committed; a delivery id the operation has
    seen before (the unique constraint says so) stores nothing and answers the existing run.

    A repeated delivery whose run is still waiting in ``received`` is queued again (the worker claims it atomically,
    so a second job does nothing): a delivery retried after the broker was down is then not stuck.
    """
    triggered_by = f"webhook:{operation.name}"[:254]
    try:
        # New deliveries are the common case: insert straight away (one short write transaction) and let the
        # unique constraint find the repeats, rather than reading first.
        with transaction.atomic():
            trigger_run = TriggerRun.objects.create(
                organization_id=operation.organization_id,
                operation=operation,
                delivery_id=delivery_id,
                payload=payload,
                created_by_email=triggered_by,
                modified_by_email=triggered_by,
            )
            transaction.on_commit(lambda: send_trigger_run(trigger_run.id))
        return DeliveryOutcome(trigger_run_id=trigger_run.id, created=True)
    except IntegrityError:
        existing = TriggerRun.objects.only("id", "status").get(operation=operation, delivery_id=delivery_id)
    if existing.status == TriggerRun.Status.RECEIVED:
        transaction.on_commit(lambda: send_trigger_run(existing.id))
    return DeliveryOutcome(trigger_run_id=existing.id, created=False)


def delivery_check_declared_size(*, declared_length: int) -> None:
    """Refuses (413) a delivery whose declared Content-Length is over NEENA_WEBHOOK_MAX_BODY_BYTES, before its body
    is read; counted like every other refusal."""
    limit = settings.NEENA_WEBHOOK_MAX_BODY_BYTES
    if declared_length > limit:
        error = PayloadTooLargeError(f"The body is larger than {limit} bytes.")
        record_webhook_delivery(accepted=False, reason=error.code)
        raise error


def delivery_receive(
    *, operation_id: UUID, body: bytes, headers: Mapping[str, str], now: float | None = None
) -> DeliveryOutcome:
    """Verifies and stores one inbound delivery. Raises, in this order: PayloadTooLargeError (413), NotFoundError
    (404: unknown, inactive or failed operation, told apart from none), SignatureError (401), SecretUnavailableError
    (503), InputValidationError (422: not a JSON object, text that cannot be stored, nesting too deep, or an overlong
    delivery id).

    Steps: size, operation, signature, JSON; Slack's ``url_verification`` is answered with its challenge and
    stores nothing; any other delivery is stored as a trigger run (see ``trigger_run_store``). Each delivery is
    counted in ``neena_webhook_deliveries_total``: accepted as new, duplicate or challenge, or refused with the
    code of the error answered (a fixed set: ``signature_invalid``, ``not_found``, ``request_too_large``...).
    """
    try:
        outcome = _receive(operation_id=operation_id, body=body, headers=headers, now=now)
    except ApplicationError as error:
        record_webhook_delivery(accepted=False, reason=error.code)
        raise
    reason = "challenge" if outcome.challenge is not None else "new" if outcome.created else "duplicate"
    record_webhook_delivery(accepted=True, reason=reason)
    return outcome


def _receive(*, operation_id: UUID, body: bytes, headers: Mapping[str, str], now: float | None) -> DeliveryOutcome:
    limit = settings.NEENA_WEBHOOK_MAX_BODY_BYTES
    if len(body) > limit:
        raise PayloadTooLargeError(f"The body is larger than {limit} bytes.")
    headers = lowercase_headers(headers)
    operation = _operation_verified(
        operation_id=operation_id, body=body, headers=headers, now=time.time() if now is None else now
    )
    payload = _payload(body)
    scheme = operation.webhook_trigger_definition.signature_scheme
    if scheme == SignatureScheme.SLACK_V0 and payload.get("type") == "url_verification":
        challenge = payload.get("challenge")
        if not isinstance(challenge, str):
            raise InputValidationError.single(["body", "challenge"], "The challenge must be a string.", "string_type")
        return DeliveryOutcome(challenge=challenge)
    return trigger_run_store(
        operation=operation, delivery_id=_delivery_id(scheme=scheme, body=body, headers=headers), payload=payload
    )
