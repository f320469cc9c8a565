"""The answers kept for requests sent with an ``Idempotency-Key`` header."""

import uuid

from django.db import models

from apps.core.models import OwnedModel


class IdempotencyKey(OwnedModel):
    """One key of one organization: who used it, for which request, and the first successful answer to it.

    A client that sends the same write twice with the same key (a retry after a timeout) gets the first answer back
    instead of a second flow or run. The unique constraint on (organization, key) is what decides, between two
    requests sent at once, which one runs: each inserts the key first, and only one insert succeeds.

    A row without ``response_status`` is a claim: its request is still running, or its process died. A claim older
    than ``NEENA_IDEMPOTENCY_CLAIM_SECONDS`` may be taken over, and a row older than ``NEENA_IDEMPOTENCY_TTL_HOURS`` is
    treated as absent (the sweeper deletes it); ``created_date`` is when the key was last claimed. ``claim`` is new at
    every claim, so a request whose claim was taken over meanwhile cannot store its answer over the newer one.

    ``fingerprint`` is the SHA-256 of the user, the method, the path, the query string and the body's SHA-256: the
    same key with another fingerprint is a mistake of the client (or another user of the organization guessing a key),
    answered 422 without revealing the stored answer.
    """

    key = models.CharField(max_length=255)
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    request_method = models.CharField(max_length=8)
    request_path = models.TextField()
    fingerprint = models.CharField(max_length=64)
    claim = models.UUIDField(default=uuid.uuid4)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    # The answer's JSON exactly as it was sent, so a replay is the same bytes (jsonb would reorder the keys).
    response_body = models.TextField(blank=True, default="")
    completed_date = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "key"], name="idempotency_key_unique_per_organization")
        ]
        # The sweeper deletes by age.
        indexes = [models.Index(fields=["created_date"], name="idempotency_key_created")]

    def __str__(self) -> str:
        return f"{self.key} ({self.request_method} {self.request_path})"
