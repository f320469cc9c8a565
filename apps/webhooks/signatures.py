"""Verifying that an inbound delivery was signed with the operation's secret, per integration signature scheme.

Every scheme is an HMAC-SHA256 keyed with the secret over the raw body (and, for some, a timestamp); the expected
value is recomputed and compared in constant time (``hmac.compare_digest``):

- ``slack_v0``: ``X-Slack-Signature: v0=<hex HMAC of "v0:{X-Slack-Request-Timestamp}:{body}">``, and the timestamp
  must be within NEENA_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS of now (Slack's replay protection);
- ``github_sha256``: ``X-Hub-Signature-256: sha256=<hex HMAC of body>``, delivery id in ``X-GitHub-Delivery``;
- ``zendesk``: ``X-Zendesk-Webhook-Signature: <base64 HMAC of X-Zendesk-Webhook-Signature-Timestamp + body>``;
- ``neena_hmac_sha256`` (the generic ``webhook`` integration, the Gmail relay): ``X-Neena-Signature:
  sha256=<hex HMAC of body>``, delivery id in ``X-Neena-Delivery``.

Integrations that send no delivery id are deduplicated on a hash of the body instead.
"""

import base64
import hashlib
import hmac
from collections.abc import Mapping

from django.conf import settings

from apps.integrations.connectors.base import SignatureScheme
from apps.webhooks.exceptions import SignatureError

SLACK_SIGNATURE = "X-Slack-Signature"
SLACK_TIMESTAMP = "X-Slack-Request-Timestamp"
GITHUB_SIGNATURE = "X-Hub-Signature-256"
GITHUB_DELIVERY = "X-GitHub-Delivery"
ZENDESK_SIGNATURE = "X-Zendesk-Webhook-Signature"
ZENDESK_TIMESTAMP = "X-Zendesk-Webhook-Signature-Timestamp"
NEENA_SIGNATURE = "X-Neena-Signature"
NEENA_DELIVERY = "X-Neena-Delivery"

DELIVERY_HEADERS: dict[str, str] = {
    SignatureScheme.GITHUB_SHA256: GITHUB_DELIVERY,
    SignatureScheme.NEENA_HMAC: NEENA_DELIVERY,
}


def _hmac_sha256(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def lowercase_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers keyed by lowercase name, which is how the functions here look them up."""
    return {name.lower(): value for name, value in headers.items()}


def _header(headers: Mapping[str, str], name: str) -> str:
    """A header's value (``headers`` keyed by lowercase name); SignatureError naming it when missing or empty."""
    value = _optional_header(headers, name)
    if not value:
        raise SignatureError(f"The {name} header is missing.", code="signature_missing")
    return value


def _optional_header(headers: Mapping[str, str], name: str) -> str:
    return headers.get(name.lower(), "").strip()


def _require_match(expected: str, given: str) -> None:
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise SignatureError("The signature does not match the operation's secret.")


def _verify_slack(secret: str, body: bytes, headers: Mapping[str, str], now: float) -> None:
    signature, timestamp = _header(headers, SLACK_SIGNATURE), _header(headers, SLACK_TIMESTAMP)
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise SignatureError(f"The {SLACK_TIMESTAMP} header is not a Unix timestamp.") from None
    if abs(now - sent_at) > settings.NEENA_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS:
        raise SignatureError("The request timestamp is too far from now (a replayed or delayed request).")
    digest = _hmac_sha256(secret, b"v0:" + timestamp.encode() + b":" + body)
    _require_match("v0=" + digest.hex(), signature)


def _verify_hex_sha256(secret: str, body: bytes, headers: Mapping[str, str], header: str) -> None:
    _require_match("sha256=" + _hmac_sha256(secret, body).hex(), _header(headers, header))


def _verify_zendesk(secret: str, body: bytes, headers: Mapping[str, str]) -> None:
    signature, timestamp = _header(headers, ZENDESK_SIGNATURE), _header(headers, ZENDESK_TIMESTAMP)
    digest = _hmac_sha256(secret, timestamp.encode() + body)
    _require_match(base64.b64encode(digest).decode(), signature)


def signature_verify(*, scheme: str, secret: str, body: bytes, headers: Mapping[str, str], now: float) -> None:
    """Returns when the delivery is signed with ``secret`` under ``scheme``; raises SignatureError (401) otherwise.

    ``headers`` are keyed by lowercase name (``lowercase_headers``); ``now`` is the current Unix time, for the schemes
    that bound the signature's age.
    """
    if not secret:
        raise SignatureError("The operation has no signing secret; rotate it to make one.")
    if scheme == SignatureScheme.SLACK_V0:
        _verify_slack(secret, body, headers, now)
    elif scheme == SignatureScheme.GITHUB_SHA256:
        _verify_hex_sha256(secret, body, headers, GITHUB_SIGNATURE)
    elif scheme == SignatureScheme.ZENDESK:
        _verify_zendesk(secret, body, headers)
    elif scheme == SignatureScheme.NEENA_HMAC:
        _verify_hex_sha256(secret, body, headers, NEENA_SIGNATURE)
    else:
        raise SignatureError(f"The signature scheme '{scheme}' is not supported.", code="signature_unsupported")


def delivery_id_for(*, scheme: str, body: bytes, headers: Mapping[str, str]) -> tuple[str, str | None]:
    """The delivery's id and the header it came from (``headers`` keyed by lowercase name): the integration's delivery
    id header where it sends one, else ``sha256:<hex of the body>`` (the same event delivered again has the same body)
    and no header."""
    header = DELIVERY_HEADERS.get(scheme)  # StrEnum members hash and compare as their text
    if header is not None:
        value = _optional_header(headers, header)
        if value:
            return value, header
    return "sha256:" + hashlib.sha256(body).hexdigest(), None
