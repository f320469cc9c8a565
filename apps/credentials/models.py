"""Integration credentials: the secrets Neena uses to act on a user's behalf in an integration."""

from django.conf import settings
from django.db import models

from apps.core.models import OwnedModel


class IntegrationCredential(OwnedModel):
    """One owner's access to one integration within an organization.

    ``secret_ciphertext`` holds the secret fields (API key, tokens) encrypted; nothing ever returns them. ``config``
    holds what is not secret (a Zendesk subdomain, an account email).
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        BROKEN = "broken", "Broken"

    integration = models.ForeignKey("integrations.Integration", on_delete=models.PROTECT, related_name="credentials")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="integration_credentials"
    )
    secret_ciphertext = models.TextField()
    secret_fields = models.JSONField(default=list, help_text="Names of the stored secret fields (never their values).")
    config = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.TextField(blank=True, default="")
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="When the OAuth2 access token expires; refreshed a little before."
    )
    refresh_claimed_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set while one worker refreshes the OAuth2 token, so no other spends the same refresh token.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "integration", "owner"], name="unique_credential_per_owner")
        ]
        indexes = [models.Index(fields=["organization", "-created_date"], name="credential_org_created")]

    def __str__(self) -> str:
        return f"{self.integration} credential of {self.owner}"


class SpentOAuth2State(models.Model):
    """The nonce of an OAuth2 state that was presented for a code exchange: a state is good for one attempt.

    The state itself is self-contained (encrypted and authenticated, ``services/oauth2.py``), so issuing an authorize
    URL, a GET, writes nothing. The first exchange attempt records the nonce before calling the provider, whatever the
    provider then answers; the primary key makes a second attempt (a replay, or a retry with the same code) fail.
    A row is only needed while its state could still be accepted, so rows past ``expires_at`` are swept.

    Not a ``BaseModel``: nobody owns it, nothing reports on it, and the nonce is its natural key.
    """

    nonce = models.CharField(max_length=64, primary_key=True)
    expires_at = models.DateTimeField(db_index=True, help_text="When the state expires; the row may go after that.")

    def __str__(self) -> str:
        return f"spent OAuth2 state {self.nonce[:8]}..."
