"""Account queries: which organizations a user may act in."""

from typing import Any
from uuid import UUID

from django.db.models import OuterRef, QuerySet, Subquery

from apps.accounts.models import Membership, Organization, User
from apps.accounts.roles import role_require
from apps.core.exceptions import InputValidationError


def organization_list_for_user(*, user: User) -> QuerySet[Organization]:
    return Organization.objects.filter(memberships__user=user)


def organization_list_with_role_for_user(*, user: User) -> QuerySet[Organization]:
    """The user's organizations, each with ``role``, the user's role in it; the personal one first, then oldest."""
    role = Membership.objects.filter(user=user, organization=OuterRef("pk")).values("role")[:1]
    return (
        Organization.objects.filter(memberships__user=user)
        .annotate(role=Subquery(role))
        .order_by("-is_personal", "created_date", "id")
    )


def organization_ids_for_user(*, user: User) -> QuerySet[Membership, Any]:
    """A subquery of the user's organization ids, for ``organization_id__in=`` filters (no extra round trip)."""
    return Membership.objects.filter(user=user).values("organization_id")


def organization_default_for_user(*, user: User) -> Organization | None:
    """Where a new object goes when the request names no organization: the personal one, else the oldest."""
    return organization_list_for_user(user=user).order_by("-is_personal", "created_date").first()


def membership_list_for_user(*, user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("organization").order_by("created_date")


def organization_for_write(
    *, user: User, organization_id: UUID | None, role: str = Membership.Role.MEMBER
) -> Organization:
    """The organization a new or moved object goes to: the one named (if the user is a member) or the default; the
    user's role in it must grant ``role`` (403 ``role_required`` otherwise).

    An organization the user is not a member of is reported exactly like one that does not exist.
    """
    if organization_id is None:
        organization = organization_default_for_user(user=user)
    else:
        organization = organization_list_for_user(user=user).filter(id=organization_id).first()
    if organization is None:
        raise InputValidationError.single(["body", "organization"], "Organization not found.", "not_found")
    role_require(user=user, organization_id=organization.id, role=role)
    return organization


def user_get_by_email(*, email: str) -> User | None:
    """The active user with this email (case-insensitive, as ``user_get_or_create`` matches), for commands that act
    as a user."""
    return User.objects.filter(email__iexact=email, is_active=True).first()


def organization_list_for_user_narrowed(*, user: User, organization: Organization | None) -> QuerySet[Membership, Any]:
    """``organization_ids_for_user``, narrowed to one organization when the request names one (its
    ``X-Neena-Organization`` header, already checked to be one of the user's)."""
    memberships = organization_ids_for_user(user=user)
    return memberships.filter(organization_id=organization.id) if organization is not None else memberships


def membership_list_for_organization(*, organization: Organization) -> QuerySet[Membership]:
    """The organization's members, oldest first, with their users."""
    return Membership.objects.filter(organization=organization).select_related("user").order_by("created_date", "id")
