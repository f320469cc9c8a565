"""Verifying that an inbound delivery was signed with the operation's secret, per integration signature scheme.

Every scheme is an HMAC-SHA256 keyed with the secret, compared in constant time; the schemes that sign a timestamp
also refuse one further than NEENA_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS from now (``stale_delivery``), which is what
stops a captured delivery from being replayed later:

- ``standard_webhooks`` (the generic ``webhook`` integration and the Gmail relay): `Standard Webhooks
  <https://www.standardwebhooks.com/>`_, verified by the ``standardwebhooks`` package. ``webhook-signature: v1,<base64
  HMAC of "{webhook-id}.{webhook-timestamp}.{body}">`` keyed with the bytes of the ``whsec_<base64>`` secret; the
  delivery id is ``webhook-id``. The signature covers the id, so a replay under a new id does not verify, and a replay
  under its own id is a duplicate;
- ``slack_v0``: ``X-Slack-Signature: v0=<hex HMAC of "v0:{X-Slack-Request-Timestamp}:{body}">`` (Unix timestamp);
- ``zendesk``: ``X-Zendesk-Webhook-Signature: <base64 HMAC of X-Zendesk-Webhook-Signature-Timestamp + body>``
  (ISO 8601 timestamp);
- ``github_sha256``: ``X-Hub-Signature-256: sha256=<hex HMAC of body>``. GitHub signs no timestamp and not its
  ``X-GitHub-Delivery`` id, so its deliveries are deduplicated on a hash of the (signed) body: a captured delivery
  replayed under a fresh delivery id is still the delivery seen before.

Integrations whose delivery id is not signed, or that send none, are deduplicated on a hash of the body.
"""

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

from django.conf import settings
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from apps.integrations.connectors.base import SignatureScheme
from apps.webhooks.exceptions import SignatureError

SLACK_SIGNATURE = "X-Slack-Signature"
SLACK_TIMESTAMP = "X-Slack-Request-Timestamp"
GITHUB_SIGNATURE = "X-Hub-Signature-256"
ZENDESK_SIGNATURE = "X-Zendesk-Webhook-Signature"
ZENDESK_TIMESTAMP = "X-Zendesk-Webhook-Signature-Timestamp"
STANDARD_ID = "webhook-id"
STANDARD_TIMESTAMP = "webhook-timestamp"
STANDARD_SIGNATURE = "webhook-signature"
# The prefix Standard Webhooks secrets carry before the base64 of their key bytes (a format marker, not a secret).
STANDARD_SECRET_PREFIX = "whsec_"  # noqa: S105

# The schemes whose delivery id header is covered by the signature, so it can be trusted for deduplication.
DELIVERY_HEADERS: dict[str, str] = {
    SignatureScheme.STANDARD_WEBHOOKS: STANDARD_ID,
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


def _require_fresh(sent_at: float, now: float) -> None:
    """Refuses a signed timestamp further than the tolerance from now, either way: a replayed (or much delayed)
    delivery, or one from a sender whose clock is wrong."""
    tolerance = settings.NEENA_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS
    if abs(now - sent_at) > tolerance:
        raise SignatureError(f"The delivery's timestamp is outside the {tolerance} s window.", code="stale_delivery")


def standard_secret_is_valid(secret: str) -> bool:
    """Whether ``secret`` is a Standard Webhooks secret: ``whsec_`` and the base64 of at least one byte."""
    if not secret.startswith(STANDARD_SECRET_PREFIX):
        return False
    try:
        return bool(base64.b64decode(secret.removeprefix(STANDARD_SECRET_PREFIX), validate=True))
    except (binascii.Error, ValueError):
        return False


def _verify_standard(secret: str, body: bytes, headers: Mapping[str, str], now: float) -> None:
    """Standard Webhooks. The headers and the window are checked here first, so a refusal says which it was; the
    signature itself is the ``standardwebhooks`` package's (which also holds the spec's fixed 5-minute window against
    the wall clock: a tolerance set above 300 s does not widen it)."""
    missing = [name for name in (STANDARD_ID, STANDARD_TIMESTAMP, STANDARD_SIGNATURE) if not headers.get(name)]
    if missing:
        headers_are = "headers are" if len(missing) > 1 else "header is"
        raise SignatureError(f"The {', '.join(missing)} {headers_are} missing.", code="signature_missing")
    try:
        sent_at = int(headers[STANDARD_TIMESTAMP])
    except ValueError:
        raise SignatureError(f"The {STANDARD_TIMESTAMP} header is not a Unix timestamp.") from None
    _require_fresh(sent_at, now)
    if not standard_secret_is_valid(secret):
        raise SignatureError(
            "The operation's secret is not a Standard Webhooks (whsec_) secret; rotate it to make one.",
            code="signature_unsupported",
        )
    try:
        Webhook(secret).verify(body, dict(headers), json_parse=False)
    except WebhookVerificationError:
        raise SignatureError("The signature does not match the operation's secret.") from None


def _verify_slack(secret: str, body: bytes, headers: Mapping[str, str], now: float) -> None:
    signature, timestamp = _header(headers, SLACK_SIGNATURE), _header(headers, SLACK_TIMESTAMP)
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise SignatureError(f"The {SLACK_TIMESTAMP} header is not a Unix timestamp.") from None
    _require_fresh(sent_at, now)
    digest = _hmac_sha256(secret, b"v0:" + timestamp.encode() + b":" + body)
    _require_match("v0=" + digest.hex(), signature)


def _verify_github(secret: str, body: bytes, headers: Mapping[str, str]) -> None:
    _require_match("sha256=" + _hmac_sha256(secret, body).hex(), _header(headers, GITHUB_SIGNATURE))


def _verify_zendesk(secret: str, body: bytes, headers: Mapping[str, str], now: float) -> None:
    signature, timestamp = _header(headers, ZENDESK_SIGNATURE), _header(headers, ZENDESK_TIMESTAMP)
    try:
        sent = datetime.fromisoformat(timestamp)
    except ValueError:
        raise SignatureError(f"The {ZENDESK_TIMESTAMP} header is not an ISO 8601 time.") from None
    _require_fresh((sent if sent.tzinfo else sent.replace(tzinfo=UTC)).timestamp(), now)
    digest = _hmac_sha256(secret, timestamp.encode() + body)
    _require_match(base64.b64encode(digest).decode(), signature)


def signature_verify(*, scheme: str, secret: str, body: bytes, headers: Mapping[str, str], now: float) -> None:
    """Returns when the delivery is signed with ``secret`` under ``scheme``; raises SignatureError (401) otherwise:
    ``signature_missing`` (a header is absent, named), ``stale_delivery`` (a signed timestamp outside the window),
    ``signature_invalid`` (anything else wrong).

    ``headers`` are keyed by lowercase name (``lowercase_headers``); ``now`` is the current Unix time, for the schemes
    that bound the signature's age.
    """
    if not secret:
        raise SignatureError("The operation has no signing secret; rotate it to make one.")
    if scheme == SignatureScheme.STANDARD_WEBHOOKS:
        _verify_standard(secret, body, headers, now)
    elif scheme == SignatureScheme.SLACK_V0:
        _verify_slack(secret, body, headers, now)
    elif scheme == SignatureScheme.GITHUB_SHA256:
        _verify_github(secret, body, headers)
    elif scheme == SignatureScheme.ZENDESK:
        _verify_zendesk(secret, body, headers, now)
    else:
        raise SignatureError(f"The signature scheme '{scheme}' is not supported.", code="signature_unsupported")


def delivery_id_for(*, scheme: str, body: bytes, headers: Mapping[str, str]) -> tuple[str, str | None]:
    """The delivery's id and the header it came from (``headers`` keyed by lowercase name): the integration's signed
    delivery id header where it has one, else ``sha256:<hex of the body>`` (the same event delivered again has the
    same body) and no header."""
    header = DELIVERY_HEADERS.get(scheme)  # StrEnum members hash and compare as their text
    if header is not None:
        value = _optional_header(headers, header)
        if value:
            return value, header
    return "sha256:" + hashlib.sha256(body).hexdigest(), None
