"""Organizations and members through the API, the ``X-Neena-Organization`` header, and the rules the services keep
whoever calls them: the last owner stays, owners are made by owners, a member manages only their own credentials.

Personas (tests/conftest.py): ``owner`` with a personal organization, ``teammate`` (member) in it, ``outsider``.
"""

import pytest

from apps.accounts.models import Membership, Organization, User
from apps.accounts.roles import RoleRequiredError
from apps.accounts.services import membership_remove, membership_role_change, organization_create
from apps.core.exceptions import ConflictError
from apps.credentials.services.credentials import credential_upsert
from apps.flows.models import FlowRequest
from apps.runs.services.approval import run_approve
from tests.factories import UserFactory, add_member
from tests.runs.flows import waiting_run

pytestmark = pytest.mark.django_db

ORGANIZATIONS = "/api/v1/organizations/"
MEMBERS = "/api/v1/organizations/members"


@pytest.fixture
def team(owner: User) -> Organization:
    return organization_create(user=owner, name="Support team")


def test_the_creator_of_an_organization_is_its_owner_and_sees_their_role(api, owner):
    created = api.post(ORGANIZATIONS, {"name": "Support team", "approval_timeout_seconds": 3600}, format="json")

    assert created.status_code == 200, created.content
    body = created.json()
    assert (body["name"], body["role"], body["is_personal"], body["approval_timeout_seconds"]) == (
        "Support team",
        "owner",
        False,
        3600,
    )
    listed = api.get(f"{ORGANIZATIONS}all").json()
    assert [(item["is_personal"], item["role"]) for item in listed] == [(True, "owner"), (False, "owner")]
    assert api.get(f"{ORGANIZATIONS}?id={body['id']}").json()["role"] == "owner"


def test_an_overlong_or_negative_timeout_is_422_not_a_500(api):
    for seconds in (0, 10**20):
        response = api.post(ORGANIZATIONS, {"name": "T", "approval_timeout_seconds": seconds}, format="json")

        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "approval_timeout_seconds"]


def test_adding_a_member_provisions_the_user_and_gives_the_role(api, team, make_client):
    response = api.post(
        f"{MEMBERS}?organization_id={team.id}", {"email": "New.Person@example.com", "role": "approver"}, format="json"
    )

    assert response.status_code == 200, response.content
    newcomer = User.objects.get(email__iexact="new.person@example.com")
    assert response.json()["role"] == "approver"
    assert Organization.objects.filter(memberships__user=newcomer, is_personal=True).exists()
    members = api.get(f"{MEMBERS}?organization_id={team.id}").json()
    assert {(member["email"], member["role"]) for member in members} == {
        ("owner@example.com", "owner"),
        (newcomer.email, "approver"),
    }
    again = api.post(f"{MEMBERS}?organization_id={team.id}", {"email": newcomer.email, "role": "member"}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "already_member")


def test_the_last_owner_can_neither_leave_nor_be_demoted(api, owner, team):
    demoted = api.put(f"{MEMBERS}?organization_id={team.id}", {"email": owner.email, "role": "admin"}, format="json")
    left = api.delete(f"{MEMBERS}?organization_id={team.id}&email={owner.email}")

    assert (demoted.status_code, demoted.json()["code"]) == (409, "last_owner")
    assert (left.status_code, left.json()["code"]) == (409, "last_owner")
    assert Membership.objects.get(user=owner, organization=team).role == "owner"


def test_with_a_second_owner_the_first_may_leave(api, owner, team):
    second = UserFactory(email="second@example.com")
    api.post(f"{MEMBERS}?organization_id={team.id}", {"email": second.email, "role": "owner"}, format="json")

    left = api.delete(f"{MEMBERS}?organization_id={team.id}&email={owner.email}")

    assert left.status_code == 200, left.content
    assert list(team.memberships.values_list("user__email", "role")) == [(second.email, "owner")]


def test_an_admin_manages_members_but_not_owners(owner, team, make_client):
    admin = UserFactory(email="admin@example.com")
    member = UserFactory(email="member@example.com")
    add_member(admin, team, "admin")
    add_member(member, team, "member")
    client = make_client(admin)

    members = f"{MEMBERS}?organization_id={team.id}"
    promoted = client.put(members, {"email": member.email, "role": "approver"}, format="json")
    made_owner = client.put(members, {"email": member.email, "role": "owner"}, format="json")
    owner_removed = client.delete(f"{members}&email={owner.email}")
    added_owner = client.post(members, {"email": "x@example.com", "role": "owner"}, format="json")

    assert promoted.status_code == 200
    for refused in (made_owner, owner_removed, added_owner):
        assert (refused.status_code, refused.json()["code"]) == (403, "role_required")
        assert "needs the owner role in Support team" in refused.json()["detail"]
    assert Membership.objects.get(user=member, organization=team).role == "approver"


def test_any_member_may_leave(team, make_client):
    viewer = UserFactory(email="viewer@example.com")
    add_member(viewer, team, "viewer")

    response = make_client(viewer).delete(f"{MEMBERS}?organization_id={team.id}&email={viewer.email}")

    assert response.status_code == 200
    assert not team.memberships.filter(user=viewer).exists()


def test_a_personal_organization_cannot_be_deleted_nor_shared(api, organization):
    deleted = api.delete(f"{ORGANIZATIONS}?id={organization.id}")
    shared = api.post(
        f"{MEMBERS}?organization_id={organization.id}", {"email": "x@example.com", "role": "member"}, format="json"
    )

    assert (deleted.status_code, deleted.json()["code"]) == (409, "personal_organization")
    assert (shared.status_code, shared.json()["code"]) == (409, "personal_organization")


def test_deleting_an_organization_deletes_what_is_in_it(api, owner, team):
    api.post("/api/v1/flow_requests/", {"request_instructions": "Hi", "organization": str(team.id)}, format="json")

    response = api.delete(f"{ORGANIZATIONS}?id={team.id}")

    assert response.status_code == 200, response.content
    assert not Organization.objects.filter(id=team.id).exists()
    assert not FlowRequest.objects.filter(organization_id=team.id).exists()


def test_an_outsider_gets_404_on_every_organization_endpoint(outsider_api, team):
    responses = [
        outsider_api.get(f"{ORGANIZATIONS}?id={team.id}"),
        outsider_api.put(ORGANIZATIONS, {"id": str(team.id), "name": "Mine"}, format="json"),
        outsider_api.delete(f"{ORGANIZATIONS}?id={team.id}"),
        outsider_api.get(f"{MEMBERS}?organization_id={team.id}"),
        outsider_api.post(
            f"{MEMBERS}?organization_id={team.id}", {"email": "o@example.com", "role": "owner"}, format="json"
        ),
        outsider_api.put(
            f"{MEMBERS}?organization_id={team.id}", {"email": "owner@example.com", "role": "viewer"}, format="json"
        ),
        outsider_api.delete(f"{MEMBERS}?organization_id={team.id}&email=owner@example.com"),
    ]

    assert [response.status_code for response in responses] == [404] * len(responses)
    assert team.name == Organization.objects.get(id=team.id).name


# --- X-Neena-Organization ----------------------------------------------------------------------------------------


def test_objects_are_created_in_the_organization_the_header_names(api, team, organization):
    response = api.post(
        "/api/v1/flow_requests/",
        {"request_instructions": "Hello"},
        format="json",
        HTTP_X_NEENA_ORGANIZATION=str(team.id),
    )

    assert response.status_code == 200, response.content
    assert FlowRequest.objects.get(id=response.json()["id"]).organization_id == team.id


def test_without_the_header_objects_go_to_the_personal_organization(api, team, organization):
    response = api.post("/api/v1/flow_requests/", {"request_instructions": "Hello"}, format="json")

    assert FlowRequest.objects.get(id=response.json()["id"]).organization_id == organization.id


def test_the_body_wins_over_the_header_and_both_are_checked(api, owner, team, organization, outsider_organization):
    body_wins = api.post(
        "/api/v1/flow_requests/",
        {"request_instructions": "Hello", "organization": str(organization.id)},
        format="json",
        HTTP_X_NEENA_ORGANIZATION=str(team.id),
    )
    foreign_body = api.post(
        "/api/v1/flow_requests/",
        {"request_instructions": "Hello", "organization": str(outsider_organization.id)},
        format="json",
        HTTP_X_NEENA_ORGANIZATION=str(team.id),
    )

    assert FlowRequest.objects.get(id=body_wins.json()["id"]).organization_id == organization.id
    assert foreign_body.status_code == 422
    assert foreign_body.json()["detail"][0]["loc"] == ["body", "organization"]


def test_lists_are_narrowed_to_the_header_organization(api, team, organization):
    api.post("/api/v1/flow_requests/", {"request_instructions": "Personal"}, format="json")
    api.post("/api/v1/flow_requests/", {"request_instructions": "Team", "organization": str(team.id)}, format="json")

    everything = api.get("/api/v1/flow_requests/all").json()
    narrowed = api.get("/api/v1/flow_requests/all", HTTP_X_NEENA_ORGANIZATION=str(team.id)).json()

    assert {item["request_instructions"] for item in everything} == {"Personal", "Team"}
    assert [item["request_instructions"] for item in narrowed] == ["Team"]


def test_a_header_naming_a_foreign_or_unknown_organization_is_404_and_a_malformed_one_422(api, outsider_organization):
    foreign = api.get("/api/v1/flows/all", HTTP_X_NEENA_ORGANIZATION=str(outsider_organization.id))
    unknown = api.get("/api/v1/flows/all", HTTP_X_NEENA_ORGANIZATION="00000000-0000-0000-0000-000000000000")
    malformed = api.get("/api/v1/flows/all", HTTP_X_NEENA_ORGANIZATION="not-a-uuid")

    assert (foreign.status_code, foreign.json()) == (unknown.status_code, unknown.json())
    assert foreign.status_code == 404
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["loc"] == ["header", "X-Neena-Organization"]


def test_the_header_organization_needs_the_role_of_the_action(owner, team, make_client):
    viewer = UserFactory(email="viewer@example.com")
    add_member(viewer, team, "viewer")

    response = make_client(viewer).post(
        "/api/v1/flow_requests/",
        {"request_instructions": "Hello"},
        format="json",
        HTTP_X_NEENA_ORGANIZATION=str(team.id),
    )

    assert (response.status_code, response.json()["code"]) == (403, "role_required")
    assert response.json()["detail"].startswith("This needs the member role in Support team")
    assert not FlowRequest.objects.filter(organization=team).exists()


# --- The services keep the rules for every caller ----------------------------------------------------------------


def test_a_member_deletes_their_own_credential_but_not_a_colleagues(owner, organization, teammate, make_client):
    own = credential_upsert(
        user=teammate, integration_short_name="trello", api_key="mine", organization=organization.id
    )
    theirs = credential_upsert(user=owner, integration_short_name="trello", api_key="owners")
    client = make_client(teammate)

    refused = client.delete(f"/api/v1/integration_credentials/?id={theirs.id}")
    deleted = client.delete(f"/api/v1/integration_credentials/?id={own.id}")

    assert (refused.status_code, refused.json()["code"]) == (403, "role_required")
    assert deleted.status_code == 200


def test_approving_through_the_service_needs_the_approver_role(owner, organization, teammate):
    flow_run = waiting_run(owner)

    with pytest.raises(RoleRequiredError, match="needs the approver role"):
        run_approve(flow_run=flow_run, user=teammate)

    Membership.objects.filter(user=teammate).update(role="approver")
    assert run_approve(flow_run=flow_run, user=teammate).approval_status == "approved"


def test_membership_services_refuse_the_last_owner_whoever_calls(owner, team):
    with pytest.raises(ConflictError, match="last owner"):
        membership_role_change(user=owner, organization=team, email=owner.email, role="member")
    with pytest.raises(ConflictError, match="last owner"):
        membership_remove(user=owner, organization=team, email=owner.email)
