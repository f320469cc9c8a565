"""The organization admin: the approval policy is checked and saved by ``organization_check`` / ``organization_update``
(``organization_create`` when a superuser adds one), so a policy the sweeper could not apply is a form error.

Personas: ``manager`` (staff allowed to change organizations, an admin of the owner's organization), ``superuser``.
"""

from datetime import timedelta

import pytest
from django.test import Client

from apps.accounts.models import Membership, Organization, User
from tests.factories import staff_user

pytestmark = pytest.mark.django_db

ORGANIZATIONS = "/admin/accounts/organization/"


@pytest.fixture
def manager(organization):
    return staff_user(
        "manager@example.com",
        "view_organization",
        "change_organization",
        "view_membership",
        "add_membership",
        "change_membership",
        organizations=[organization],
        role=Membership.Role.ADMIN,
    )


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def policy_form(page, **policy):
    """The organization's page as the browser would post it back, its memberships unchanged, with ``policy``."""
    form = page.context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields}
    data["forbid_self_approval"] = "on" if data["forbid_self_approval"] else ""
    for inline in page.context["inline_admin_formsets"]:  # none for who may not see memberships
        formset = inline.formset
        prefix = formset.prefix
        data[f"{prefix}-TOTAL_FORMS"] = len(formset.forms)
        data[f"{prefix}-INITIAL_FORMS"] = formset.initial_form_count()
        for inline_form in formset.forms:
            for name in inline_form.fields:
                value = inline_form[name].value()
                data[inline_form.add_prefix(name)] = "" if value is None else value
    data.update(policy)
    return {name: value for name, value in data.items() if value != ""}


@pytest.mark.parametrize("timeout", ["00:00:00", "-1 00:00:00", "400 00:00:00"])
def test_an_approval_timeout_the_sweeper_cannot_apply_is_a_form_error(manager, organization, timeout):
    client = logged_in(manager)
    url = f"{ORGANIZATIONS}{organization.id}/change/"

    response = client.post(url, policy_form(client.get(url), approval_timeout=timeout))

    assert response.status_code == 200
    assert "approval_timeout" in response.context["adminform"].form.errors
    organization.refresh_from_db()
    assert organization.approval_timeout is None


def test_a_valid_policy_is_saved_by_the_service(manager, organization):
    client = logged_in(manager)
    url = f"{ORGANIZATIONS}{organization.id}/change/"
    members = set(Membership.objects.filter(organization=organization).values_list("user_id", flat=True))

    response = client.post(
        url,
        policy_form(
            client.get(url),
            approval_policy="always",
            approval_timeout="01:00:00",
            approval_timeout_action="continue",
            forbid_self_approval="on",
        ),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    organization.refresh_from_db()
    assert (organization.approval_policy, organization.approval_timeout) == ("always", timedelta(hours=1))
    assert (organization.approval_timeout_action, organization.forbid_self_approval) == ("continue", True)
    assert organization.modified_by_email == manager.email
    assert set(Membership.objects.filter(organization=organization).values_list("user_id", flat=True)) == members


def test_a_superuser_adds_an_organization_through_the_service(organization):
    superuser = User.objects.create_superuser("root@example.com", "secret-password")
    client = logged_in(superuser)
    form = {
        "name": "Support team",
        "approval_policy": "side_effects",
        "approval_timeout": "400 00:00:00",
        "approval_timeout_action": "cancel",
        "memberships-TOTAL_FORMS": 1,
        "memberships-INITIAL_FORMS": 0,
        "memberships-0-user": str(superuser.id),
        "memberships-0-role": "owner",
    }

    refused = client.post(f"{ORGANIZATIONS}add/", form)
    added = client.post(f"{ORGANIZATIONS}add/", {**form, "approval_timeout": "7 00:00:00"})

    assert refused.status_code == 200
    assert "approval_timeout" in refused.context["adminform"].form.errors
    assert added.status_code == 302
    team = Organization.objects.get(name="Support team")
    assert (team.approval_timeout, team.created_by_email) == (timedelta(days=7), superuser.email)
    assert Membership.objects.get(organization=team).user == superuser


def test_staff_cannot_make_a_user_they_cannot_see_a_member(manager, organization, outsider):
    client = logged_in(manager)
    url = f"{ORGANIZATIONS}{organization.id}/change/"
    form = policy_form(client.get(url))
    added = form["memberships-TOTAL_FORMS"]
    form.update(
        {
            "memberships-TOTAL_FORMS": added + 1,
            f"memberships-{added}-user": str(outsider.id),
            f"memberships-{added}-role": "member",
        }
    )

    response = client.post(url, form)

    assert response.status_code == 200
    (inline,) = response.context["inline_admin_formsets"]
    assert "user" in inline.formset.forms[added].errors
    assert not Membership.objects.filter(user=outsider, organization=organization).exists()


def test_membership_rows_are_saved_by_the_membership_services(manager, owner, organization):
    """The inline keeps the API's rules: an admin cannot unmake an owner, and a refusal saves nothing on the page."""
    client = logged_in(manager)
    url = f"{ORGANIZATIONS}{organization.id}/change/"
    form = policy_form(client.get(url), approval_policy="always")
    (row,) = [key.removesuffix("-user") for key, value in form.items() if key.endswith("-user") and value == owner.id]
    form[f"{row}-role"] = "member"

    response = client.post(url, form, follow=True)

    shown = [str(message) for message in response.context["messages"]]
    assert any("Nothing was saved" in message and "needs the owner role" in message for message in shown), shown
    assert Membership.objects.get(user=owner, organization=organization).role == "owner"
    organization.refresh_from_db()
    assert organization.approval_policy == "side_effects"
