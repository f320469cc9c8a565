"""Reading the audit log: only an organization's admins and owners see its events."""

from django.db.models import QuerySet

from apps.accounts.models import Membership, User
from apps.audit.models import AuditEvent

# The roles that may read an organization's log. The general role layer (issue 15 point 4) folds this in.
AUDIT_READER_ROLES = (Membership.Role.OWNER, Membership.Role.ADMIN)


def audit_event_list_for_user(*, user: User) -> QuerySet[AuditEvent]:
    """The events of the organizations where ``user`` is an admin or an owner, newest first; none elsewhere (a
    member's or an outsider's list is empty, as if there were no events)."""
    readable = Membership.objects.filter(user=user, role__in=AUDIT_READER_ROLES).values("organization_id")
    return AuditEvent.objects.filter(organization_id__in=readable).order_by("-created_date", "-id")
