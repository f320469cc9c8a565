"""Integration credentials: the secrets Neena uses to act on a user's behalf in an integration."""

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel, OwnedModel


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

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "integration", "owner"], name="unique_credential_per_owner")
        ]
        indexes = [models.Index(fields=["organization", "-created_date"], name="credential_org_created")]

    def __str__(self) -> str:
        return f"{self.integration} credential of {self.owner}"


class OAuth2Authorization(BaseModel):
    """A started OAuth2 authorization: the PKCE verifier waiting for the provider's code, used at most once.

    The ``state`` sent to the provider is this row's id, signed with an expiry; the code exchange finds the row,
    checks it belongs to the caller, and deletes it.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    integration = models.ForeignKey("integrations.Integration", on_delete=models.CASCADE, related_name="+")
    code_verifier_ciphertext = models.TextField()

    def __str__(self) -> str:
        return f"OAuth2 authorization of {self.integration} for {self.user}"
