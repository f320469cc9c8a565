"""What the audit log keeps of a credential: who owns it, for which integration, its status, the names of its secret
fields and its (non-secret) config. Never a secret: not the ciphertext, not a token, not a value of a secret field."""

from typing import Any

from apps.accounts.models import User
from apps.audit.services import audit_event_record
from apps.credentials.models import IntegrationCredential


def credential_metadata(credential: IntegrationCredential) -> dict[str, Any]:
    return {
        "integration": credential.integration.short_name,
        "owner_id": credential.owner_id,
        "owner_email": credential.owner.email,
        "status": credential.status,
        "status_reason": credential.status_reason,
        "secret_fields": list(credential.secret_fields),
        "config": dict(credential.config),
        "expires_at": credential.expires_at,
    }


def credential_audit_record(
    *, actor: User | None, credential: IntegrationCredential, before: dict[str, Any] | None, deleted: bool = False
) -> None:
    """Records the credential created (no ``before``), updated, or deleted, in the caller's transaction."""
    if deleted:
        action, after = "credential.deleted", None
    else:
        action, after = (
            ("credential.created" if before is None else "credential.updated"),
            credential_metadata(credential),
        )
    audit_event_record(
        organization_id=credential.organization_id,
        actor=actor,
        action=action,
        object_type="credential",
        object_id=credential.id,
        before=before,
        after=after,
    )
