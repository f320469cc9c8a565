"""Idempotency keys: claiming a key before a request runs, keeping its answer, replaying it to repeats.

The steps of a request sent with a key (``apps/idempotency/decorators.py`` calls them):

1. ``idempotency_key_claim`` inserts the key, committed at once, before the request does anything. The unique
   constraint lets exactly one of two concurrent requests in. A key already there is replayed (same fingerprint,
   answered), refused (another fingerprint: 422; still running: 409), or taken over when it has expired or its
   request died.
2. The request runs.
3. ``idempotency_key_complete`` stores a successful answer; ``idempotency_key_release`` deletes the claim of a request
   that failed, so the client may retry with the same key (a failed request changed nothing: every service it calls
   is one transaction).
"""

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Organization, User
from apps.core.exceptions import ConflictError, InputValidationError
from apps.idempotency.models import IdempotencyKey

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
# A claim that keeps being taken over or released between our insert and our read: give up after this many rounds.
_CLAIM_ATTEMPTS = 5


@dataclass(frozen=True)
class IdempotencyClaim:
    """A key this request holds while it runs; ``token`` proves the claim is still its own."""

    key_id: UUID
    token: UUID


@dataclass(frozen=True)
class IdempotentReplay:
    """The answer the first request with this key got, to be sent again as it was."""

    status: int
    body: str


def idempotency_fingerprint(
    *, user: User, method: str, path: str, query_string: str, body: bytes, organization_header: str = ""
) -> str:
    """What makes two requests "the same": the caller, the method, the path (with or without its trailing slash, which
    the API does not tell apart), the query string, the body, byte for byte, and the ``X-Neena-Organization`` header
    (a create in another organization is another request). Without the header, the fingerprint is the one keys
    stored before the header existed have."""
    canonical = [str(user.pk), method.upper(), path.rstrip("/"), query_string, hashlib.sha256(body).hexdigest()]
    if organization_header:
        canonical.append(organization_header)
    return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()


def _ttl() -> timedelta:
    return timedelta(hours=settings.NEENA_IDEMPOTENCY_TTL_HOURS)


def _claim_timeout() -> timedelta:
    return timedelta(seconds=settings.NEENA_IDEMPOTENCY_CLAIM_SECONDS)


def _reused() -> InputValidationError:
    return InputValidationError.single(
        ["header", HEADER],
        f"This {HEADER} was used for another request (another method, path, query string, body or user); "
        "use a new key for a new request.",
        "idempotency_key_reused",
    )


def _in_progress() -> ConflictError:
    return ConflictError(
        f"A request with this {HEADER} is still being processed; retry after it has answered.",
        code="idempotency_key_in_progress",
    )


def _free(row: IdempotencyKey, now: datetime) -> bool:
    """An expired key, or the claim of a request that died, may be used again."""
    if row.created_date <= now - _ttl():
        return True
    return row.response_status is None and row.created_date <= now - _claim_timeout()


def idempotency_key_claim(
    *,
    organization: Organization,
    user: User,
    key: str,
    fingerprint: str,
    method: str,
    path: str,
    now: datetime | None = None,
) -> IdempotencyClaim | IdempotentReplay:
    """Claims ``key`` for a request about to run, or answers why it may not run.

    Returns the claim, or the stored answer to replay; raises 422 ``idempotency_key_reused`` when the key was used for
    another request, 409 ``idempotency_key_in_progress`` while the first request with it runs.

    Not one transaction, deliberately: the claim must be committed before the request runs, so that a concurrent
    request sees it. The insert is the arbiter (a savepoint, so the unique-constraint error leaves any enclosing
    transaction usable); a free row is taken over with an UPDATE conditional on the claim read, so of two requests
    taking it over, one wins.
    """
    now = now or timezone.now()
    for _ in range(_CLAIM_ATTEMPTS):
        token = uuid.uuid4()
        try:
            with transaction.atomic():
                row = IdempotencyKey.objects.create(
                    organization=organization,
                    user=user,
                    key=key,
                    request_method=method,
                    request_path=path,
                    fingerprint=fingerprint,
                    claim=token,
                    created_by_email=user.email,
                    modified_by_email=user.email,
                )
            return IdempotencyClaim(key_id=row.id, token=token)
        except IntegrityError:
            pass
        existing = IdempotencyKey.objects.filter(organization=organization, key=key).first()
        if existing is None:
            continue  # released or swept since the insert: try the insert again
        if _free(existing, now):
            taken = IdempotencyKey.objects.filter(id=existing.id, claim=existing.claim).update(
                claim=token,
                user=user,
                request_method=method,
                request_path=path,
                fingerprint=fingerprint,
                response_status=None,
                response_body="",
                completed_date=None,
                created_date=now,
                modified_date=now,
                created_by_email=user.email,
                modified_by_email=user.email,
            )
            if taken:
                return IdempotencyClaim(key_id=existing.id, token=token)
            continue  # another request took it over first: look again
        if existing.fingerprint != fingerprint:
            raise _reused()
        if existing.response_status is None:
            raise _in_progress()
        return IdempotentReplay(status=existing.response_status, body=existing.response_body)
    raise _in_progress()


def idempotency_key_complete(*, claim: IdempotencyClaim, status: int, body: str) -> bool:
    """Stores the answer of the request holding ``claim``; False when the claim is no longer its own (it ran past
    ``NEENA_IDEMPOTENCY_CLAIM_SECONDS`` and a repeat took the key over), in which case nothing is stored."""
    now = timezone.now()
    return (
        IdempotencyKey.objects.filter(id=claim.key_id, claim=claim.token, response_status__isnull=True).update(
            response_status=status, response_body=body, completed_date=now, modified_date=now
        )
        == 1
    )


def idempotency_key_release(*, claim: IdempotencyClaim) -> None:
    """Frees the key of a request that failed, so that the client can retry with it; a claim taken over meanwhile
    belongs to the newer request and is left alone."""
    IdempotencyKey.objects.filter(id=claim.key_id, claim=claim.token, response_status__isnull=True).delete()


def idempotency_keys_sweep(*, now: datetime | None = None) -> int:
    """Deletes the keys past ``NEENA_IDEMPOTENCY_TTL_HOURS`` (claims included); returns how many. Lookups ignore them
    already, so the sweep only keeps the table small."""
    now = now or timezone.now()
    deleted, _ = IdempotencyKey.objects.filter(created_date__lte=now - _ttl()).delete()
    return deleted
