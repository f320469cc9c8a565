"""``GET /api/v1/audit_events/all``: an organization's admins and owners read its log, paged and newest first; members
and outsiders see none of it."""

import pytest

from apps.accounts.models import Membership
from apps.credentials.services.credentials import credential_upsert
from tests.factories import UserFactory, add_member
from tests.runs.flows import make_flow, step

pytestmark = pytest.mark.django_db

URL = "/api/v1/audit_events/all"


def test_an_owner_reads_the_log_newest_first(api, owner, organization):
    credential = credential_upsert(user=owner, integration_short_name="trello", api_key="k-secret")
    make_flow(owner, [step(0, "Format Text", template="x")], [])

    response = api.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert [event["action"] for event in body] == ["flow_version.created", "credential.created"]
    event = body[1]
    assert set(event) == {
        "id",
        "organization",
        "actor",
        "actor_email",
        "action",
        "object_type",
        "object_id",
        "before",
        "after",
        "created_date",
    }
    assert (event["organization"], event["actor"], event["actor_email"]) == (
        str(organization.id),
        str(owner.id),
        owner.email,
    )
    assert (event["object_type"], event["object_id"], event["before"]) == ("credential", str(credential.id), None)
    assert event["after"]["owner_email"] == owner.email
    assert "k-secret" not in response.content.decode()


def test_the_log_is_paged_with_skip_and_limit(api, owner):
    for index in range(3):
        make_flow(owner, [step(0, "Format Text", template=str(index))], [])

    everything = api.get(URL).json()
    page = api.get(f"{URL}?skip=1&limit=1").json()

    assert len(everything) == 3
    assert page == everything[1:2]
    assert api.get(f"{URL}?limit=0").status_code == 422


def test_an_admin_reads_it_and_a_member_sees_nothing(owner, organization, teammate, make_client):
    admin = UserFactory(email="admin@example.com")
    add_member(admin, organization, role=Membership.Role.ADMIN)
    make_flow(owner, [step(0, "Format Text", template="x")], [])

    assert len(make_client(admin).get(URL).json()) == 1
    member = make_client(teammate).get(URL)
    assert member.status_code == 200
    assert member.json() == []


def test_an_outsider_sees_nothing_of_another_organization(owner, outsider_api):
    make_flow(owner, [step(0, "Format Text", template="x")], [])

    assert outsider_api.get(URL).json() == []


def test_a_demoted_admin_loses_the_log_at_once(owner, organization, make_client):
    admin = UserFactory(email="admin@example.com")
    membership = add_member(admin, organization, role=Membership.Role.ADMIN)
    make_flow(owner, [step(0, "Format Text", template="x")], [])
    client = make_client(admin)
    assert len(client.get(URL).json()) == 1

    Membership.objects.filter(id=membership.id).update(role=Membership.Role.MEMBER)

    assert client.get(URL).json() == []


def test_reading_needs_a_token_and_the_read_scope(client, owner, make_client):
    assert client.get(URL).status_code == 401
    assert make_client(owner, scopes=("write",)).get(URL).status_code == 403
