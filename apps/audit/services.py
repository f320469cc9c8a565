"""Writing the audit log. Every service that changes something the log covers calls ``audit_event_record`` inside its
own transaction, so the event and the change are committed together or not at all.

What is covered: an organization's approval policy (``organization.*``), memberships and roles (``membership.*``),
integration credentials (``credential.*``, their metadata only: never a secret, nor the names' values), webhook
secret rotation (``webhook_operation.secret_rotated``), approval decisions (``flow_run.approved`` / ``.rejected``)
and flow versions (``flow_version.created``).
"""

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.db import transaction
from django.db.models import Model

from apps.accounts.models import Membership, User
from apps.audit.models import AuditEvent


class AuditOutsideTransactionError(RuntimeError):
    """An audit event recorded outside a transaction could be committed without its change, or the other way round."""


def audit_snapshot(instance: Model, fields: Iterable[str]) -> dict[str, Any]:
    """The named fields of ``instance`` as the log keeps them (a foreign key by its id: ``<name>_id``)."""
    return {name: getattr(instance, name) for name in fields}


def audit_event_record(
    *,
    organization_id: UUID,
    actor: User | None,
    action: str,
    object_type: str,
    object_id: UUID | str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor_email: str = "",
) -> AuditEvent:
    """Appends one event to the organization's log, in the caller's transaction (refused outside one).

    ``actor`` is None for what the system decides (``actor_email`` then says what, e.g. ``approval timeout``).
    ``before`` / ``after`` hold the changed object's recorded fields; callers never pass a secret.
    """
    if not transaction.get_connection().in_atomic_block:
        raise AuditOutsideTransactionError(f"The audit event {action} must be recorded in the change's transaction.")
    return AuditEvent.objects.create(
        organization_id=organization_id,
        actor=actor,
        actor_email=actor.email if actor is not None else actor_email,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=before,
        after=after,
    )


def audit_membership_record(
    *, actor: User | None, membership: Membership, before_role: str | None, after_role: str | None
) -> AuditEvent:
    """Records a membership added (no ``before_role``), its role changed, or removed (no ``after_role``).

    The membership services (``membership_add`` / ``membership_role_change`` / ``membership_remove``) and the admin's
    members inline call this in their transaction, with the role before and after the change.
    """
    if before_role is None:
        action = "membership.added"
    elif after_role is None:
        action = "membership.removed"
    else:
        action = "membership.role_changed"
    member = {"user_id": membership.user_id, "email": membership.user.email}
    return audit_event_record(
        organization_id=membership.organization_id,
        actor=actor,
        action=action,
        object_type="membership",
        object_id=membership.id,
        before=None if before_role is None else {**member, "role": before_role},
        after=None if after_role is None else {**member, "role": after_role},
    )
