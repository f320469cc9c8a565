"""Organization services: the approval policy's rules, for the admin's forms and any later API."""

from datetime import timedelta

import pytest

from apps.accounts.models import Organization
from apps.accounts.services import APPROVAL_TIMEOUT_MAX, organization_create, organization_update
from apps.core.exceptions import InputValidationError

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
