"""Account queries: which organizations a user may act in."""

from typing import Any
from uuid import UUID

from django.db.models import QuerySet

from apps.accounts.models import Membership, Organization, User
from apps.core.exceptions import InputValidationError


def organization_list_for_user(*, user: User) -> QuerySet[Organization]:
    return Organization.objects.filter(memberships__user=user)


def organization_ids_for_user(*, user: User) -> QuerySet[Membership, Any]:
    """A subquery of the user's organization ids, for ``organization_id__in=`` filters (no extra round trip)."""
    return Membership.objects.filter(user=user).values("organization_id")


def organization_default_for_user(*, user: User) -> Organization | None:
    """Where a new object goes when the request names no organization: the personal one, else the oldest."""
    return organization_list_for_user(user=user).order_by("-is_personal", "created_date").first()


def membership_list_for_user(*, user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("organization").order_by("created_date")


def organization_for_write(*, user: User, organization_id: UUID | None) -> Organization:
    """The organization a new or moved object goes to: the one named (if the user is a member) or the default.

    An organization the user is not a member of is reported exactly like one that does not exist.
    """
    if organization_id is None:
        organization = organization_default_for_user(user=user)
    else:
        organization = organization_list_for_user(user=user).filter(id=organization_id).first()
    if organization is None:
        raise InputValidationError.single(["body", "organization"], "Organization not found.", "not_found")
    return organization


def user_get_by_email(*, email: str) -> User | None:
    """The active user with this email (case-insensitive, as ``user_get_or_create`` matches), for commands that act
    as a user."""
    return User.objects.filter(email__iexact=email, is_active=True).first()
