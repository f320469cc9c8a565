"""Deactivating a user stops every way they authenticate at once (API keys, OAuth2 tokens, admin sessions), approve
included; removing a member takes the organization's objects from them at once."""

import pytest
from django.test import Client
from oauth2_provider.models import Application
from rest_framework.test import APIClient

from apps.accounts.models import Membership, User
from tests.factories import UserFactory, add_member
from tests.runs.flows import waiting_run

pytestmark = pytest.mark.django_db


def _deactivate(user: User) -> None:
    User.objects.filter(id=user.id).update(is_active=False)


@pytest.mark.parametrize("header", ["bearer", "api_key", "bare"])
def test_a_deactivated_users_api_key_is_refused_on_the_next_request(owner, make_client, header):
    client = make_client(owner, header=header)
    assert client.get("/api/v1/users/").status_code == 200

    _deactivate(owner)
    response = client.get("/api/v1/users/")

    assert response.status_code == 401
    assert response.json()["code"] == "user_inactive"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_deactivated_users_oauth2_token_is_refused(client, owner):
    application = Application.objects.create(
        name="Reporting",
        user=owner,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret="s3cret-s3cret",
    )
    token = client.post(
        "/o/token/",
        {
            "grant_type": "client_credentials",
            "client_id": application.client_id,
            "client_secret": "s3cret-s3cret",
            "scope": "read",
        },
    ).json()["access_token"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/v1/users/").status_code == 200

    _deactivate(owner)

    assert api.get("/api/v1/users/").status_code == 401


def test_a_deactivated_approver_cannot_approve_with_a_token_they_still_hold(owner, make_client):
    flow_run = waiting_run(owner)
    client = make_client(owner)
    _deactivate(owner)

    response = client.put(f"/api/v1/flow_runs/approve?flow_run_id={flow_run.id}")

    assert response.status_code == 401
    flow_run.refresh_from_db()
    assert flow_run.approval_status == "pending"


def test_a_deactivated_staff_users_admin_session_ends_at_once(owner):
    User.objects.filter(id=owner.id).update(is_staff=True, is_superuser=True)
    flow_run = waiting_run(owner)
    session = Client()
    session.force_login(User.objects.get(id=owner.id))
    assert session.get("/admin/").status_code == 200

    _deactivate(owner)

    assert session.get("/admin/").status_code == 302  # to the login page: the session's user is gone
    session.post(f"/admin/runs/flowrun/{flow_run.id}/approve/")
    flow_run.refresh_from_db()
    assert flow_run.approval_status == "pending"


def test_a_removed_member_loses_the_organizations_objects_on_the_next_request(owner, organization, make_client):
    member = UserFactory(email="leaver@example.com")
    add_member(member, organization)
    flow_run = waiting_run(owner)
    client = make_client(member)
    assert client.get(f"/api/v1/flow_runs/?id={flow_run.id}").status_code == 200

    Membership.objects.filter(user=member, organization=organization).delete()

    assert client.get(f"/api/v1/flow_runs/?id={flow_run.id}").status_code == 404
    assert client.put(f"/api/v1/flow_runs/approve?flow_run_id={flow_run.id}").status_code == 404
