"""Actors as references: a run's trigger is its user or the webhook operation that started it, decisions reference
the deciding user, and forbid_self_approval sees through a webhook operation to its creator."""

import pytest

from apps.accounts.models import Membership, Organization
from apps.core.exceptions import ForbiddenError
from apps.flows.models import FlowRequest
from apps.runs.models import ApprovalDecision, FlowRun
from apps.runs.services.approval import approvals_time_out, run_approve, run_reject
from apps.runs.services.control import run_retry
from apps.runs.services.run_creation import flow_execute
from apps.webhooks.services import operations
from tests.factories import UserFactory, add_member, trigger_definition
from tests.runs.flows import make_flow, make_request, run_steps, set_policy, step, waiting_run
from tests.webhooks.signing import ZENDESK_TICKET_CREATED

pytestmark = pytest.mark.django_db


@pytest.fixture
def teammate(teammate, organization):
    """An admin here: admins create webhook operations, and approvers (which admins are) decide."""
    Membership.objects.filter(user=teammate, organization=organization).update(role=Membership.Role.ADMIN)
    return teammate


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: None)


def _operation(creator):
    operation, _ = operations.trigger_operation_create(
        user=creator,
        name="New tickets",
        webhook_trigger_definition=trigger_definition(ZENDESK_TICKET_CREATED).id,
        template_body="Tell the team.",
        status="active",
    )
    return operation


def _webhook_run(creator, operation):
    """A run parked before its Send Notification step, started by a delivery to ``operation`` (acting as its
    creator), as ``trigger_run_process`` starts it."""
    flow = make_flow(creator, [step(0, "Send Notification", 'Tell ann@example.com "Refund approved"')], [])
    flow_run = flow_execute(
        user=creator,
        flow=flow,
        flow_request=make_request(creator),
        triggered_by=f"webhook:{operation.name}",
        trigger_webhook_operation=operation,
    )
    return run_steps(flow_run)


def test_a_run_started_by_a_user_references_them(api, owner):
    flow_run = waiting_run(owner)

    assert (flow_run.trigger_user_id, flow_run.trigger_webhook_operation_id) == (owner.id, None)
    assert api.get(f"/api/v1/flow_runs/?id={flow_run.id}").json()["triggered_by"] == owner.email


def test_a_webhook_run_references_its_operation_and_shows_its_name(api, owner):
    operation = _operation(owner)

    flow_run = _webhook_run(owner, operation)

    assert (flow_run.trigger_user_id, flow_run.trigger_webhook_operation_id) == (None, operation.id)
    assert api.get(f"/api/v1/flow_runs/?id={flow_run.id}").json()["triggered_by"] == "webhook:New tickets"


def test_the_creator_of_the_webhook_operation_may_not_approve_its_run(owner, teammate, organization, make_client):
    set_policy(organization, Organization.ApprovalPolicy.SIDE_EFFECTS, forbid_self_approval=True)
    flow_run = _webhook_run(owner, _operation(owner))
    assert flow_run.status == FlowRun.Status.AWAITING_APPROVAL

    own = make_client(owner).put(f"/api/v1/flow_runs/approve?flow_run_id={flow_run.id}")
    own_reject = make_client(owner).put(f"/api/v1/flow_runs/reject?flow_run_id={flow_run.id}")
    other = make_client(teammate).put(f"/api/v1/flow_runs/approve?flow_run_id={flow_run.id}")

    assert own.status_code == 403
    assert own.json()["code"] == "self_approval"
    assert "webhook operation" in own.json()["detail"]
    assert own_reject.status_code == 403
    assert other.status_code == 200


def test_deleting_the_operation_does_not_let_its_creator_approve_its_runs(owner, teammate, organization, make_client):
    set_policy(organization, Organization.ApprovalPolicy.SIDE_EFFECTS, forbid_self_approval=True)
    operation = _operation(teammate)
    flow_run = _webhook_run(teammate, operation)

    operations.trigger_operation_delete(user=teammate, operation=operation)

    flow_run.refresh_from_db()
    assert flow_run.trigger_webhook_operation_id is None
    assert make_client(teammate).put(f"/api/v1/flow_runs/approve?flow_run_id={flow_run.id}").status_code == 403
    assert make_client(owner).put(f"/api/v1/flow_runs/approve?flow_run_id={flow_run.id}").status_code == 200


def test_a_webhook_run_of_someone_elses_operation_may_be_approved(owner, teammate, organization, make_client):
    set_policy(organization, Organization.ApprovalPolicy.SIDE_EFFECTS, forbid_self_approval=True)
    flow_run = _webhook_run(teammate, _operation(teammate))

    assert make_client(owner).put(f"/api/v1/flow_runs/approve?flow_run_id={flow_run.id}").status_code == 200


def test_the_trigger_user_is_matched_by_reference_not_by_email(owner, teammate, organization):
    set_policy(organization, Organization.ApprovalPolicy.SIDE_EFFECTS, forbid_self_approval=True)
    flow_run = waiting_run(owner)
    # The recorded string names the teammate, the reference the owner: the reference decides.
    FlowRun.objects.filter(id=flow_run.id).update(triggered_by=teammate.email)
    flow_run.refresh_from_db()

    run_approve(flow_run=flow_run, user=teammate)

    flow_run.refresh_from_db()
    assert flow_run.approval_status == FlowRun.ApprovalStatus.APPROVED


def _failed_before_a_side_effect(owner):
    """A run of ``owner`` failed at its first step (the request has no ``name``), before a Send Notification step."""
    flow = make_flow(
        owner,
        [
            step(0, "Format Text", template="{{ request.metadata.name }}"),
            step(1, "Send Notification", recipient="ann@example.com", message="{{ steps.0.result.text }}"),
        ],
        [(0, 1)],
    )
    flow_run = run_steps(flow_execute(user=owner, flow=flow, flow_request=make_request(owner)))
    assert flow_run.status == FlowRun.Status.FAILED
    return flow_run


@pytest.mark.parametrize("retry", ["retry", "retry_failed"])
def test_who_retried_a_colleagues_run_may_not_approve_what_it_parks(retry, owner, teammate, organization, make_client):
    set_policy(organization, Organization.ApprovalPolicy.SIDE_EFFECTS, forbid_self_approval=True)
    third = UserFactory(email="third@example.com")
    add_member(third, organization, Membership.Role.APPROVER)
    flow_run = _failed_before_a_side_effect(owner)
    retrier = make_client(teammate)
    # The retrier may change what the retry prepares, by editing the request first.
    edited = retrier.put(
        "/api/v1/flow_requests/",
        {"id": str(flow_run.flow_request_id), "request_instructions": "x", "request_metadata": {"name": "Bo"}},
        format="json",
    )
    assert edited.status_code == 200
    if retry == "retry":
        assert retrier.post(f"/api/v1/flow_runs/retry?flow_run_id={flow_run.id}").status_code == 200
    else:
        assert retrier.post(f"/api/v1/flow_runs/retry_failed?flow_id={flow_run.flow_id}").json()["queued"] == 1
    flow_run = run_steps(flow_run)
    assert flow_run.status == FlowRun.Status.AWAITING_APPROVAL
    assert (flow_run.trigger_user_id, flow_run.retried_by_user_id) == (owner.id, teammate.id)

    by_retrier = retrier.put(f"/api/v1/flow_runs/approve?flow_run_id={flow_run.id}")
    rejected_by_retrier = retrier.put(f"/api/v1/flow_runs/reject?flow_run_id={flow_run.id}")
    by_trigger = make_client(owner).put(f"/api/v1/flow_runs/approve?flow_run_id={flow_run.id}")
    by_third = make_client(third).put(f"/api/v1/flow_runs/approve?flow_run_id={flow_run.id}")

    assert (by_retrier.status_code, by_retrier.json()["code"]) == (403, "self_approval")
    assert "retried" in by_retrier.json()["detail"]
    assert rejected_by_retrier.status_code == 403
    assert by_trigger.status_code == 403
    assert by_third.status_code == 200


def test_the_retrier_is_still_refused_once_deleted_by_the_email_kept(owner, teammate, organization):
    set_policy(organization, Organization.ApprovalPolicy.SIDE_EFFECTS, forbid_self_approval=True)
    flow_run = _failed_before_a_side_effect(owner)
    FlowRequest.objects.filter(id=flow_run.flow_request_id).update(request_metadata={"name": "Bo"})

    run_steps(run_retry(flow_run=flow_run, user=teammate))
    FlowRun.objects.filter(id=flow_run.id).update(retried_by_user=None)  # as SET_NULL leaves it
    flow_run.refresh_from_db()
    assert (flow_run.status, flow_run.retried_by_email) == (FlowRun.Status.AWAITING_APPROVAL, teammate.email)

    with pytest.raises(ForbiddenError, match="retried"):
        run_approve(flow_run=flow_run, user=teammate)


def test_decisions_reference_the_deciding_user_and_keep_the_email(owner, teammate, organization):
    approved = waiting_run(owner)
    rejected = waiting_run(owner)

    run_approve(flow_run=approved, user=teammate, comment="fine")
    run_reject(flow_run=rejected, user=owner)

    decision = ApprovalDecision.objects.get(flow_run=approved)
    assert (decision.decided_by_user_id, decision.decided_by) == (teammate.id, teammate.email)
    decision = ApprovalDecision.objects.get(flow_run=rejected)
    assert (decision.decided_by_user_id, decision.decided_by) == (owner.id, owner.email)


def test_a_timed_out_decision_references_nobody(owner, organization):
    from datetime import timedelta

    from django.utils import timezone

    set_policy(organization, Organization.ApprovalPolicy.SIDE_EFFECTS, approval_timeout=timedelta(minutes=5))
    flow_run = waiting_run(owner)

    approvals_time_out(now=timezone.now() + timedelta(hours=1))

    decision = ApprovalDecision.objects.get(flow_run=flow_run)
    assert (decision.decided_by_user_id, decision.decided_by) == (None, "approval timeout")
