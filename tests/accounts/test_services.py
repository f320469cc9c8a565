"""Account services: the approval policy's rules, for the admin's forms and any later API; the user an OIDC token
signs in as."""

from datetime import timedelta

import pytest

from apps.accounts.exceptions import TokenRefusedError
from apps.accounts.models import Membership, Organization, User
from apps.accounts.services import (
    APPROVAL_TIMEOUT_MAX,
    organization_create,
    organization_update,
    user_sign_in_oidc,
)
from apps.core.exceptions import InputValidationError
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_policy_service_lists_every_problem(owner, organization):
    with pytest.raises(InputValidationError) as raised:
        organization_update(
            user=owner,
            organization=organization,
            name=" ",
            approval_policy="sometimes",
            approval_timeout=timedelta(days=366),
            approval_timeout_action="explode",
            forbid_self_approval=False,
        )

    assert [item.loc for item in raised.value.items] == [
        ["body", "name"],
        ["body", "approval_policy"],
        ["body", "approval_timeout_action"],
        ["body", "approval_timeout"],
    ]


def test_the_longest_timeout_is_accepted_and_the_writer_recorded(owner, organization):
    organization_update(
        user=owner,
        organization=organization,
        name="Renamed",
        approval_policy=Organization.ApprovalPolicy.ALWAYS,
        approval_timeout=APPROVAL_TIMEOUT_MAX,
        approval_timeout_action=Organization.ApprovalTimeoutAction.CONTINUE,
        forbid_self_approval=True,
    )

    organization.refresh_from_db()
    assert (organization.name, organization.approval_timeout) == ("Renamed", APPROVAL_TIMEOUT_MAX)
    assert organization.modified_by_email == owner.email


def test_create_checks_the_policy_before_writing(owner):
    with pytest.raises(InputValidationError):
        organization_create(user=owner, name="Team", approval_timeout=timedelta(0))

    team = organization_create(user=owner, name="Team", approval_timeout=timedelta(minutes=5))

    assert Organization.objects.filter(name="Team").get() == team
    assert (team.created_by_email, team.is_personal) == (owner.email, False)


def test_sign_in_provisions_a_new_user_once(db):
    first = user_sign_in_oidc(subject="auth0|ann", email="ann@example.com", full_name="Ann")
    again = user_sign_in_oidc(subject="auth0|ann", email="ANN@example.com", full_name="Someone")

    assert again == first
    assert (first.auth0_id, first.full_name) == ("auth0|ann", "Ann")
    assert Membership.objects.get(user=first).organization.is_personal
    assert User.objects.count() == 1


def test_sign_in_reads_the_user_a_concurrent_first_sign_in_created(db, monkeypatch):
    # The other request's user is committed between this one's lookup (which missed it) and its insert.
    created_meanwhile = UserFactory(email="ann@example.com")
    real_filter = User.objects.filter
    lookups = []

    def filter_missing_the_first_lookup(*args, **kwargs):
        queryset = real_filter(*args, **kwargs)
        if "email__iexact" in kwargs and not lookups:
            lookups.append(kwargs)
            return queryset.none()
        return queryset

    monkeypatch.setattr(User.objects, "filter", filter_missing_the_first_lookup)

    user = user_sign_in_oidc(subject="auth0|ann", email="ann@example.com")

    assert lookups
    assert user == created_meanwhile
    assert User.objects.get(pk=user.pk).auth0_id == "auth0|ann"
    assert User.objects.count() == 1


def test_sign_in_never_relinks_a_user_linked_to_another_subject(db):
    ann = UserFactory(email="ann@example.com", auth0_id="auth0|ann")

    with pytest.raises(TokenRefusedError):
        user_sign_in_oidc(subject="auth0|mallory", email="ann@example.com")

    ann.refresh_from_db()
    assert ann.auth0_id == "auth0|ann"


def test_sign_in_leaves_a_deactivated_user_unlinked(db):
    ann = UserFactory(email="ann@example.com")
    User.objects.filter(pk=ann.pk).update(is_active=False)

    with pytest.raises(TokenRefusedError, match="deactivated"):
        user_sign_in_oidc(subject="auth0|ann", email="ann@example.com")

    assert User.objects.get(pk=ann.pk).auth0_id == ""
