"""The audit log: each covered change writes one event in its own transaction, with who, what and the fields before
and after (never a secret); events cannot be changed or deleted through the ORM."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.test import Client

from apps.accounts.models import Membership, Organization, User
from apps.accounts.services import organization_update
from apps.audit.models import AppendOnlyError, AuditEvent
from apps.audit.services import AuditOutsideTransactionError, audit_event_record
from apps.credentials.services.credentials import credential_delete, credential_upsert
from apps.flows.services import flow_update
from apps.runs.services.approval import approvals_time_out, run_approve, run_reject
from apps.webhooks.services import operations
from tests.accounts.test_admin import policy_form
from tests.factories import UserFactory, shared_organization, trigger_definition
from tests.runs.flows import make_flow, set_policy, step, waiting_run
from tests.webhooks.signing import ZENDESK_TICKET_CREATED

pytestmark = pytest.mark.django_db

SECRET = "trello-key-that-must-never-be-logged"


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: None)


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("created_date"))


def test_a_policy_change_records_before_and_after(owner, organization):
    organization_update(
        user=owner,
        organization=organization,
        name=organization.name,
        approval_policy=Organization.ApprovalPolicy.ALWAYS,
        approval_timeout=timedelta(hours=2),
        approval_timeout_action=Organization.ApprovalTimeoutAction.CANCEL,
        forbid_self_approval=True,
    )

    (event,) = events("organization.policy_changed")
    assert (event.organization_id, event.actor_id, event.actor_email) == (organization.id, owner.id, owner.email)
    assert (event.object_type, event.object_id) == ("organization", str(organization.id))
    assert event.before["approval_policy"] == "side_effects" and event.before["forbid_self_approval"] is False
    assert event.after["approval_policy"] == "always" and event.after["forbid_self_approval"] is True
    assert event.after["approval_timeout"] == "P0DT02H00M00S"


def test_saving_an_unchanged_policy_records_nothing(owner, organization):
    organization_update(
        user=owner,
        organization=organization,
        name=organization.name,
        approval_policy=organization.approval_policy,
        approval_timeout=None,
        approval_timeout_action=organization.approval_timeout_action,
        forbid_self_approval=organization.forbid_self_approval,
    )

    assert events("organization.policy_changed") == []


def test_credentials_are_recorded_by_their_metadata_never_their_secret(owner, organization):
    created = credential_upsert(user=owner, integration_short_name="trello", api_key=SECRET, config={"board": "b"})
    credential_upsert(user=owner, integration_short_name="trello", api_key=SECRET + "-2", config={"board": "c"})
    created.refresh_from_db()
    credential_id = str(created.id)
    credential_delete(credential=created, user=owner)

    (create,), (update,), (delete,) = (
        events("credential.created"),
        events("credential.updated"),
        events("credential.deleted"),
    )
    assert create.before is None
    assert create.after == {
        "integration": "trello",
        "owner_id": str(owner.id),
        "owner_email": owner.email,
        "status": "active",
        "status_reason": "",
        "secret_fields": ["api_key"],
        "config": {"board": "b"},
        "expires_at": None,
    }
    assert (update.before["config"], update.after["config"]) == ({"board": "b"}, {"board": "c"})
    assert delete.before["config"] == {"board": "c"} and delete.after is None
    assert {create.object_id, update.object_id, delete.object_id} == {credential_id}
    stored = str(list(AuditEvent.objects.values_list("before", "after")))
    assert SECRET not in stored and "ciphertext" not in stored


def test_rotating_a_webhook_secret_is_recorded_without_the_secret(owner, organization):
    operation, _ = operations.trigger_operation_create(
        user=owner,
        name="New tickets",
        webhook_trigger_definition=trigger_definition(ZENDESK_TICKET_CREATED).id,
        template_body="Tell the team.",
        status="active",
    )

    secret = operations.trigger_operation_rotate_secret(user=owner, operation=operation)

    (event,) = events("webhook_operation.secret_rotated")
    assert (event.object_type, event.object_id, event.actor_id) == ("webhook_operation", str(operation.id), owner.id)
    assert event.before == {"name": "New tickets", "status": "active"}
    assert event.after["name"] == "New tickets" and "secret_rotated_at" in event.after
    assert secret not in str([event.before, event.after])


def test_approvals_and_rejections_are_recorded(owner, teammate, organization):
    Membership.objects.filter(user=teammate, organization=organization).update(role=Membership.Role.APPROVER)
    approved, rejected = waiting_run(owner), waiting_run(owner)

    run_approve(flow_run=approved, user=teammate, comment="ok", parameters={"recipient": "bob@example.com"})
    run_reject(flow_run=rejected, user=owner, comment="no")

    (approval,) = events("flow_run.approved")
    assert (approval.object_id, approval.actor_id) == (str(approved.id), teammate.id)
    assert approval.before == {"approval_status": "pending"}
    (parked,) = approval.after["steps"]
    assert parked["overrides"] == [
        {"name": "recipient", "old_value": "ann@example.com", "new_value": "bob@example.com"}
    ]
    assert parked["fingerprint"] == approved.task_runs.get(task_operation_index=1).approved_step["fingerprint"]
    (rejection,) = events("flow_run.rejected")
    assert (rejection.object_id, rejection.actor_email, rejection.after["comment"]) == (
        str(rejected.id),
        owner.email,
        "no",
    )


def test_a_timed_out_decision_is_recorded_as_the_systems(owner, organization):
    from django.utils import timezone

    set_policy(organization, Organization.ApprovalPolicy.SIDE_EFFECTS, approval_timeout=timedelta(minutes=1))
    flow_run = waiting_run(owner)

    approvals_time_out(now=timezone.now() + timedelta(hours=1))

    (event,) = events("flow_run.rejected")
    assert (event.object_id, event.actor_id, event.actor_email) == (str(flow_run.id), None, "approval timeout")


def test_each_flow_version_is_recorded(owner, organization):
    flow = make_flow(owner, [step(0, "Format Text", template="one")], [])
    flow_update(user=owner, flow=flow, name=flow.name, task_operations=[step(0, "Format Text", template="two")])

    flow.refresh_from_db()
    first, second = events("flow_version.created")
    assert (first.object_type, first.before, first.after["number"]) == ("flow_version", None, 1)
    assert second.before == {"flow": str(flow.id), "number": 1}
    assert second.after["number"] == 2 and second.after["task_operations"] == 1
    assert second.object_id == str(flow.latest_version_id)


def test_membership_changes_in_the_admin_are_recorded(owner):
    organization = shared_organization(owner)  # a personal organization has only its owner
    manager = User.objects.create_superuser("root@example.com", "secret-password")
    joiner = UserFactory(email="joiner@example.com")
    client = Client()
    client.force_login(manager)
    url = f"/admin/accounts/organization/{organization.id}/change/"
    data = policy_form(client.get(url))
    added = data["memberships-TOTAL_FORMS"]
    data.update(
        {
            "memberships-TOTAL_FORMS": added + 1,
            f"memberships-{added}-user": str(joiner.id),
            f"memberships-{added}-role": "admin",
        }
    )
    response = client.post(url, data)
    assert response.status_code == 302, [f.errors for f in response.context["inline_admin_formsets"][0].formset.forms]

    (event,) = events("membership.added")
    membership = Membership.objects.get(user=joiner, organization=organization)
    assert (event.actor_id, event.object_id, event.before) == (manager.id, str(membership.id), None)
    assert event.after == {"user_id": str(joiner.id), "email": joiner.email, "role": "admin"}

    data = policy_form(client.get(url))
    index = next(key for key, value in data.items() if str(value) == str(membership.id) and key.endswith("-id")).split(
        "-"
    )[1]
    data[f"memberships-{index}-role"] = "member"
    assert client.post(url, data).status_code == 302
    (event,) = events("membership.role_changed")
    assert (event.before["role"], event.after["role"]) == ("admin", "member")

    data = policy_form(client.get(url))
    data[f"memberships-{index}-DELETE"] = "on"
    assert client.post(url, data).status_code == 302
    (event,) = events("membership.removed")
    assert (event.before["role"], event.after) == ("member", None)
    assert not Membership.objects.filter(id=membership.id).exists()


def test_events_are_append_only(owner, organization):
    flow = make_flow(owner, [step(0, "Format Text", template="one")], [])
    event = AuditEvent.objects.get(object_id=str(flow.latest_version_id))

    event.action = "flow_version.forged"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(id=event.id).update(action="flow_version.forged")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(id=event.id).delete()
    assert AuditEvent.objects.get(id=event.id).action == "flow_version.created"


def test_deleting_the_organization_still_works(owner):
    team = Organization.objects.create(name="Team")
    Membership.objects.create(user=owner, organization=team, role="owner")
    with transaction.atomic():
        audit_event_record(organization_id=team.id, actor=owner, action="x.y", object_type="x", object_id="1")

    team.delete()

    assert not AuditEvent.objects.filter(organization_id=team.id).exists()


@pytest.mark.django_db(transaction=True)
def test_an_event_outside_a_transaction_is_refused(owner):
    organization = Organization.objects.get(memberships__user=owner)

    with pytest.raises(AuditOutsideTransactionError):
        audit_event_record(organization_id=organization.id, actor=owner, action="x.y", object_type="x", object_id="1")
    assert not AuditEvent.objects.exists()
