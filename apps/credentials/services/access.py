"""Handing a step the credential its integration needs: found, usable, fresh, decrypted."""

from uuid import UUID

from django.db.models import Case, IntegerField, Value, When

from apps.credentials.encryption import DecryptionError, decrypt_json
from apps.credentials.models import IntegrationCredential
from apps.credentials.services.oauth2 import OAuth2Error, credential_refresh_if_expiring
from apps.integrations.execution import CredentialAccess, TaskError
from apps.integrations.models import Integration


def credential_for_step(
    *, organization_id: UUID, integration: Integration, triggered_by: str
) -> CredentialAccess | None:
    """The credential a step of ``integration`` runs with, or None for integrations that need none.

    The run's trigger user's own credential in the organization comes first, then the organization's most recently
    updated one. None usable (missing, broken, undecryptable, or failing to refresh) is a TaskError naming the
    integration, so the step fails without calling anything.
    """
    if integration.auth_type == Integration.AuthType.NONE:
        return None
    candidates = (
        IntegrationCredential.objects.filter(organization_id=organization_id, integration=integration)
        .select_related("integration")
        .annotate(
            mine=Case(
                When(owner__email__iexact=triggered_by, then=Value(0)), default=Value(1), output_field=IntegerField()
            )
        )
        .order_by("mine", "-modified_date")
    )
    active = next((candidate for candidate in candidates if candidate.status == candidate.Status.ACTIVE), None)
    if active is None:
        broken = candidates.first()
        if broken is not None:
            raise TaskError(f"The {integration.name} credential is broken: {broken.status_reason or 'reconnect it'}.")
        raise TaskError(
            f"No {integration.name} credential in this organization: add one with POST /api/v1/integration_credentials/"
            + (" or connect through OAuth2." if integration.auth_type == Integration.AuthType.OAUTH2 else ".")
        )
    try:
        credential = credential_refresh_if_expiring(credential=active)
        secrets = decrypt_json(credential.secret_ciphertext)
    except OAuth2Error as error:
        raise TaskError(str(error)) from error
    except DecryptionError as error:
        raise TaskError(f"The {integration.name} credential cannot be decrypted with the configured keys.") from error
    return CredentialAccess(credential_id=credential.id, secrets=secrets, config=dict(credential.config))
