"""Handing a step the credential its integration needs: found, usable, fresh, decrypted."""

from uuid import UUID

from django.db.models import Case, IntegerField, QuerySet, Value, When

from apps.accounts.models import Membership
from apps.credentials.encryption import DecryptionError, decrypt_json
from apps.credentials.models import IntegrationCredential
from apps.credentials.services.oauth2 import OAuth2Error, credential_refresh_if_expiring
from apps.integrations.execution import CredentialAccess, TaskError
from apps.integrations.models import Integration


def _candidates(
    *, organization_id: UUID, integration: Integration, triggered_by: str
) -> QuerySet[IntegrationCredential]:
    """The organization's credentials for the integration, the trigger user's own first, then the newest."""
    return (
        IntegrationCredential.objects.filter(organization_id=organization_id, integration=integration)
        .select_related("integration", "owner")
        .annotate(
            mine=Case(
                When(owner__email__iexact=triggered_by, then=Value(0)), default=Value(1), output_field=IntegerField()
            )
        )
        .order_by("mine", "-modified_date")
    )


def credential_choice(
    *, organization_id: UUID, integration: Integration, triggered_by: str
) -> IntegrationCredential | None:
    """The credential a step of ``integration`` would run with now, without refreshing or decrypting it (no network,
    so an approval can record it inside its transaction): the first active candidate, or None (also for
    integrations that need no credential)."""
    if integration.auth_type == Integration.AuthType.NONE:
        return None
    candidates = _candidates(organization_id=organization_id, integration=integration, triggered_by=triggered_by)
    return next((candidate for candidate in candidates if candidate.status == candidate.Status.ACTIVE), None)


def credential_owner_check(*, credential: IntegrationCredential, organization_id: UUID) -> None:
    """Refuses (TaskError) a credential whose owner left the organization or was deactivated: a run never acts with
    the access of someone who is no longer a member, even when their credential is still stored in it."""
    if not Membership.objects.filter(
        user_id=credential.owner_id, organization_id=organization_id, user__is_active=True
    ).exists():
        raise TaskError(
            f"The {credential.integration.name} credential's owner ({credential.owner.email}) is no longer a member "
            "of this organization (credential owner is no longer a member); the step is not run with it. Delete "
            "the credential or add one of a member."
        )


def credential_for_step(
    *, organization_id: UUID, integration: Integration, triggered_by: str
) -> CredentialAccess | None:
    """The credential a step of ``integration`` runs with, or None for integrations that need none.

    The run's trigger user's own credential in the organization comes first, then the organization's most recently
    updated one. None usable (missing, broken, undecryptable, or failing to refresh) is a TaskError naming the
    integration, so the step fails without calling anything; so is the chosen one when its owner is no longer an
    active member (``credential_owner_check``): the step fails rather than quietly use it or pick another.
    """
    if integration.auth_type == Integration.AuthType.NONE:
        return None
    active = credential_choice(organization_id=organization_id, integration=integration, triggered_by=triggered_by)
    if active is None:
        broken = _candidates(
            organization_id=organization_id, integration=integration, triggered_by=triggered_by
        ).first()
        if broken is not None:
            raise TaskError(f"The {integration.name} credential is broken: {broken.status_reason or 'reconnect it'}.")
        raise TaskError(
            f"No {integration.name} credential in this organization: add one with POST /api/v1/integration_credentials/"
            + (" or connect through OAuth2." if integration.auth_type == Integration.AuthType.OAUTH2 else ".")
        )
    credential_owner_check(credential=active, organization_id=organization_id)
    return _access(active, integration)


def credential_approved_for_step(
    *, organization_id: UUID, integration: Integration, credential_id: UUID, owner_email: str
) -> CredentialAccess:
    """The very credential an approval fixed for a step, still in the run's organization and for the step's
    integration, and its owner still an active member of it; otherwise a TaskError, so the step fails rather than run
    with another one."""
    credential = (
        IntegrationCredential.objects.filter(id=credential_id, organization_id=organization_id, integration=integration)
        .select_related("integration", "owner")
        .first()
    )
    if credential is None:
        raise TaskError(
            f"The {integration.name} credential approved for this step ({owner_email}'s) was deleted; the step is not "
            "run with another one. Retry the run to approve it again."
        )
    if credential.status != credential.Status.ACTIVE:
        raise TaskError(
            f"The {integration.name} credential approved for this step is broken: "
            f"{credential.status_reason or 'reconnect it'}."
        )
    credential_owner_check(credential=credential, organization_id=organization_id)
    return _access(credential, integration)


def _access(credential: IntegrationCredential, integration: Integration) -> CredentialAccess:
    """The credential refreshed when about to expire, and decrypted."""
    try:
        credential = credential_refresh_if_expiring(credential=credential)
        secrets = decrypt_json(credential.secret_ciphertext)
    except OAuth2Error as error:
        raise TaskError(str(error)) from error
    except DecryptionError as error:
        raise TaskError(f"The {integration.name} credential cannot be decrypted with the configured keys.") from error
    return CredentialAccess(credential_id=credential.id, secrets=secrets, config=dict(credential.config))
