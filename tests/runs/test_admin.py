"""The flow run admin: the approval queue, bulk and single approve / reject through the services, the run's page with
its DAG picture, and who may decide. Django's test client, no worker: steps run in-process where a test needs them.

Personas: ``approver`` (staff with ``runs.approve_flowrun``), ``viewer`` (staff who may only view runs), both members
of the owner's organization: the admin shows staff their organizations' runs only (tests/test_admin_scoping.py).
"""

import re

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils.html import escape

from apps.accounts.models import Membership, Organization
from apps.integrations.models import Notification
from apps.runs.drawing import DagNode, dag_svg, topological_layers
from apps.runs.models import ApprovalDecision, FlowRun, TaskRun
from apps.runs.services.run_creation import flow_execute
from tests.factories import FlowRunFactory, chain_flow
from tests.factories import staff_user as staff
from tests.runs.flows import make_flow, make_request, run_steps, step, waiting_run

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/runs/flowrun/"


def run_url(flow_run, view="change"):
    """The run's page, or its "approve", "reject", "delete" URL."""
    return f"{CHANGELIST}{flow_run.id}/{view}/"


def logged_in(user, **options):
    client = Client(**options)
    client.force_login(user)
    return client


@pytest.fixture
def approver(organization):
    # The Django permission shows the buttons; the approver role in the run's organization lets the service decide.
    return staff("approver@example.com", "approve_flowrun", organizations=[organization], role=Membership.Role.APPROVER)


@pytest.fixture
def viewer(organization):
    return staff("viewer@example.com", "view_flowrun", organizations=[organization])


@pytest.fixture
def approver_client(approver):
    return logged_in(approver)


@pytest.fixture
def viewer_client(viewer):
    return logged_in(viewer)


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def bulk(client, action, flow_runs, query=""):
    return client.post(
        CHANGELIST + query,
        {"action": action, "_selected_action": [str(flow_run.id) for flow_run in flow_runs], "index": 0},
        follow=True,
    )


def node_statuses(content):
    return {int(index): status for index, status in re.findall(r'data-index="(\d+)" data-status="(\w+)"', content)}


# --- The approval queue -----------------------------------------------------------------------------------------


def test_changelist_opens_on_the_runs_awaiting_approval(approver_client, owner, organization):
    waiting = waiting_run(owner)
    completed = FlowRunFactory(organization=organization)
    rejected = FlowRunFactory(
        organization=organization, status=FlowRun.Status.CANCELLED, approval_status=FlowRun.ApprovalStatus.REJECTED
    )

    default = approver_client.get(CHANGELIST)
    everything = approver_client.get(CHANGELIST + "?approval_status=all")
    decided = approver_client.get(CHANGELIST + "?approval_status=rejected")

    assert default.status_code == 200
    assert list(default.context["cl"].result_list) == [waiting]
    approval_filter = default.context["cl"].filter_specs[0]
    selected = [choice["display"] for choice in approval_filter.choices(default.context["cl"]) if choice["selected"]]
    assert selected == ["Awaiting approval"]
    assert set(everything.context["cl"].result_list) == {waiting, completed, rejected}
    assert list(decided.context["cl"].result_list) == [rejected]


def test_bulk_approve_resumes_each_waiting_run_and_reports_conflicts(approver_client, approver, owner, organization):
    first, second = waiting_run(owner), waiting_run(owner, "bob@example.com")
    finished = FlowRunFactory(organization=organization)

    response = bulk(approver_client, "approve_selected", [first, second, finished])

    assert response.status_code == 200
    for flow_run in (first, second):
        flow_run.refresh_from_db()
        assert flow_run.status == FlowRun.Status.IN_PROGRESS
        assert flow_run.approval_status == FlowRun.ApprovalStatus.APPROVED
        assert flow_run.approved_by == approver.email
        decision = flow_run.approval_decisions.get()
        assert (decision.decision, decision.decided_by) == ("approved", approver.email)
        assert flow_run.task_runs.get(task_operation_index=1).status == TaskRun.Status.PENDING
    finished.refresh_from_db()
    assert finished.status == FlowRun.Status.COMPLETED
    assert finished.approval_status is None
    shown = messages_of(response)
    assert any(message.startswith("Approved 2 runs:") for message in shown), shown
    assert any(str(finished.id) in message and "not waiting for approval" in message for message in shown), shown


def test_bulk_reject_cancels_each_run_and_sends_nothing(approver_client, approver, owner):
    first, second = waiting_run(owner), waiting_run(owner, "bob@example.com")

    response = bulk(approver_client, "reject_selected", [first, second])

    assert response.status_code == 200
    assert any(message.startswith("Rejected 2 runs:") for message in messages_of(response))
    for flow_run in (first, second):
        flow_run.refresh_from_db()
        assert flow_run.status == FlowRun.Status.CANCELLED
        assert flow_run.approval_status == FlowRun.ApprovalStatus.REJECTED
        assert flow_run.task_runs.get(task_operation_index=1).status == TaskRun.Status.CANCELLED
        assert flow_run.approval_decisions.get().decision == ApprovalDecision.Decision.REJECTED
    assert not Notification.objects.exists()


def test_bulk_decision_on_a_run_decided_meanwhile_is_reported_not_dropped(approver_client, owner):
    flow_run = waiting_run(owner)
    assert approver_client.post(run_url(flow_run, "reject"), follow=True).status_code == 200

    # The page was loaded while the run still waited; it has left the default "awaiting approval" view since.
    response = bulk(approver_client, "approve_selected", [flow_run])

    assert response.status_code == 200
    (message,) = messages_of(response)
    assert "was not approved: The flow run is not waiting for approval." in message
    flow_run.refresh_from_db()
    assert flow_run.approval_status == FlowRun.ApprovalStatus.REJECTED


# --- The run's page -----------------------------------------------------------------------------------------------


def test_change_page_draws_the_dag_and_shows_steps_and_the_decision_form(approver_client, owner):
    flow = make_flow(
        owner,
        [
            step(0, "Format Text", template="Refund approved"),
            step(1, "Send Notification", "Tell ann@example.com"),
            step(2, "Format Text", template="side branch"),
            step(3, "Format Text", template="done"),
        ],
        [(0, 1), (0, 2), (1, 3), (2, 3)],
    )
    flow_run = run_steps(flow_execute(user=owner, flow=flow, flow_request=make_request(owner)))

    response = approver_client.get(run_url(flow_run))

    assert response.status_code == 200
    content = response.content.decode()
    (svg,) = re.findall(r'<svg class="dag".*?</svg>', content, re.DOTALL)
    assert svg.count('class="dag-node"') == 4
    assert svg.count('class="dag-edge"') == 4
    assert node_statuses(svg) == {0: "completed", 1: "awaiting_approval", 2: "completed", 3: "pending"}
    assert svg.count('class="dag-legend-entry"') == len(TaskRun.Status.values)
    assert "http" not in svg and "<script" not in svg
    assert 'id="approve-run"' in content and 'id="reject-run"' in content
    assert f'action="{run_url(flow_run, "approve")}"' in content
    assert f'formaction="{run_url(flow_run, "reject")}"' in content
    parked = re.search(r'id="step-1".*?</table>', content, re.DOTALL).group(0)
    assert "ann@example.com" in parked and "Refund approved" in parked
    assert "instruction text" in parked  # the source of the recipient
    assert "&quot;text&quot;: &quot;Refund approved&quot;" in content  # step 0's result
    assert "No decision yet." in content


def test_change_page_lists_the_approval_audit(approver_client, approver, owner):
    flow_run = waiting_run(owner)
    approver_client.post(run_url(flow_run, "approve"), {"comment": "checked the amount"})

    content = approver_client.get(run_url(flow_run)).content.decode()

    audit = re.search(r'id="run-approval-audit".*?</table>', content, re.DOTALL).group(0)
    assert audit.count('class="approval-decision-row"') == 1
    assert "Approved" in audit and approver.email in audit and "checked the amount" in audit and "Step 1" in audit
    assert 'id="approve-run"' not in content  # decided: nothing left to decide


def _attempt_rows(content, index):
    block = re.search(rf'id="step-{index}".*?(?=<div class="run-step"|id="run-approval-audit")', content, re.DOTALL)
    return re.findall(r'<tr class="run-attempt" data-status="(\w+)">(.*?)</tr>', block.group(0), re.DOTALL)


def test_change_page_shows_each_steps_attempts_newest_first(approver_client, owner):
    flow_run = waiting_run(owner)
    approver_client.post(run_url(flow_run, "approve"))
    run_steps(flow_run)
    parked = flow_run.task_runs.get(task_operation_index=1)

    content = approver_client.get(run_url(flow_run)).content.decode()

    rows = _attempt_rows(content, 1)
    assert [status for status, _ in rows] == ["completed", "awaiting_approval"]
    assert "Stopped for approval" in rows[1][1] and f"{parked.id}:0" in rows[1][1]
    assert [status for status, _ in _attempt_rows(content, 0)] == ["completed"]


@override_settings(NEENA_DETAIL_TASK_RUN_ATTEMPTS_LIMIT=1)
def test_change_page_says_when_it_shows_only_the_latest_attempts(approver_client, owner):
    flow_run = waiting_run(owner)
    approver_client.post(run_url(flow_run, "approve"))
    run_steps(flow_run)

    content = approver_client.get(run_url(flow_run)).content.decode()

    assert [status for status, _ in _attempt_rows(content, 1)] == ["completed"]
    assert "(the latest 1 of 2)" in content


def test_change_page_queries_do_not_grow_with_the_steps(approver_client, organization):
    small = FlowRunFactory(organization=organization, flow=chain_flow(organization, steps=2))
    large = FlowRunFactory(organization=organization, flow=chain_flow(organization, steps=6))

    counts = []
    for flow_run in (small, large):
        with CaptureQueriesContext(connection) as queries:
            assert approver_client.get(run_url(flow_run)).status_code == 200
        counts.append(len(queries))

    assert counts[0] == counts[1], counts


def test_changelist_queries_do_not_grow_with_the_runs(approver_client, organization):
    def count_queries():
        with CaptureQueriesContext(connection) as queries:
            assert approver_client.get(CHANGELIST + "?approval_status=all").status_code == 200
        return len(queries)

    FlowRunFactory(organization=organization)
    few = count_queries()
    for _ in range(4):
        FlowRunFactory(organization=organization)

    assert count_queries() == few


# --- Approve and Reject buttons -------------------------------------------------------------------------------------


def test_approve_with_a_comment_resumes_the_run(approver_client, approver, owner):
    flow_run = waiting_run(owner)

    response = approver_client.post(run_url(flow_run, "approve"), {"comment": "checked the amount"})

    assert response.status_code == 302
    assert response.url == run_url(flow_run)
    flow_run.refresh_from_db()
    assert flow_run.status == FlowRun.Status.IN_PROGRESS
    assert flow_run.approval_status == FlowRun.ApprovalStatus.APPROVED
    assert (flow_run.approved_by, flow_run.approval_comment) == (approver.email, "checked the amount")
    decision = ApprovalDecision.objects.get(flow_run=flow_run)
    assert (decision.decision, decision.decided_by, decision.comment) == (
        "approved",
        approver.email,
        "checked the amount",
    )
    assert any("was approved" in message for message in messages_of(approver_client.get(response.url)))
    # What the worker would do next: the approved step runs as prepared and the run completes.
    assert run_steps(flow_run).status == FlowRun.Status.COMPLETED
    assert Notification.objects.get(flow_run=flow_run).recipient == "ann@example.com"


def test_reject_with_a_comment_cancels_the_run(approver_client, approver, owner):
    flow_run = waiting_run(owner)

    response = approver_client.post(run_url(flow_run, "reject"), {"comment": "wrong customer"})

    assert response.status_code == 302
    flow_run.refresh_from_db()
    assert flow_run.status == FlowRun.Status.CANCELLED
    assert flow_run.approval_status == FlowRun.ApprovalStatus.REJECTED
    assert "wrong customer" in flow_run.status_reason
    assert ApprovalDecision.objects.get(flow_run=flow_run).comment == "wrong customer"
    assert not Notification.objects.exists()


def test_a_second_decision_is_an_error_message_not_a_500(approver_client, owner):
    flow_run = waiting_run(owner)
    approver_client.post(run_url(flow_run, "approve"))

    response = approver_client.post(run_url(flow_run, "reject"), follow=True)

    assert response.status_code == 200
    assert "The run was not rejected: The flow run is not waiting for approval." in messages_of(response)
    flow_run.refresh_from_db()
    assert flow_run.approval_status == FlowRun.ApprovalStatus.APPROVED
    assert flow_run.approval_decisions.count() == 1


def test_self_approval_forbidden_by_policy_is_an_error_message(approver_client, approver, owner, organization):
    Organization.objects.filter(id=organization.id).update(forbid_self_approval=True)
    flow_run = waiting_run(owner)
    FlowRun.objects.filter(id=flow_run.id).update(trigger_user=approver, triggered_by=approver.email)

    response = approver_client.post(run_url(flow_run, "approve"), follow=True)

    assert response.status_code == 200
    assert "The run was not approved: The user who triggered a run may not decide on it." in messages_of(response)
    flow_run.refresh_from_db()
    assert flow_run.approval_status == FlowRun.ApprovalStatus.PENDING


def test_decision_urls_take_only_csrf_checked_posts(approver, owner):
    flow_run = waiting_run(owner)
    client = logged_in(approver, enforce_csrf_checks=True)

    assert client.get(run_url(flow_run, "approve")).status_code == 405
    assert client.post(run_url(flow_run, "approve")).status_code == 403  # no CSRF token
    flow_run.refresh_from_db()
    assert flow_run.approval_status == FlowRun.ApprovalStatus.PENDING


def test_decision_on_an_unknown_run_redirects_with_a_message(approver_client, organization):
    unknown = "00000000-0000-0000-0000-000000000000"

    response = approver_client.post(f"{CHANGELIST}{unknown}/approve/", follow=True)

    assert response.status_code == 200
    assert any(unknown in message for message in messages_of(response))


# --- Who may decide -----------------------------------------------------------------------------------------------


def test_staff_without_the_approve_permission_sees_no_buttons_and_gets_403(viewer_client, owner):
    flow_run = waiting_run(owner)

    page = viewer_client.get(run_url(flow_run))
    changelist = viewer_client.get(CHANGELIST)
    approve = viewer_client.post(run_url(flow_run, "approve"), {"comment": "sneaky"})
    reject = viewer_client.post(run_url(flow_run, "reject"))
    bulk(viewer_client, "approve_selected", [flow_run])

    assert page.status_code == 200
    assert '<svg class="dag"' in page.content.decode()
    assert 'id="approve-run"' not in page.content.decode()
    action_form = changelist.context["action_form"]  # None when the user may run no action at all
    actions = [name for name, _ in action_form.fields["action"].choices] if action_form else []
    assert "approve_selected" not in actions and "reject_selected" not in actions
    assert (approve.status_code, reject.status_code) == (403, 403)
    flow_run.refresh_from_db()
    assert flow_run.approval_status == FlowRun.ApprovalStatus.PENDING
    assert not flow_run.approval_decisions.exists()


def test_runs_cannot_be_added_changed_or_deleted_in_the_admin(approver_client, owner):
    flow_run = waiting_run(owner)

    assert approver_client.get(f"{CHANGELIST}add/").status_code == 403
    assert approver_client.post(run_url(flow_run), {"status": "completed"}).status_code == 403
    assert approver_client.get(run_url(flow_run, "delete")).status_code == 403
    page = approver_client.get(run_url(flow_run))
    assert not page.context["adminform"].form.fields  # every field is read-only


def test_admin_without_staff_login_redirects_to_the_login_page(client, owner):
    flow_run = waiting_run(owner)

    response = client.post(run_url(flow_run, "approve"))

    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


# --- Notifications ----------------------------------------------------------------------------------------------


def test_notification_admin_lists_what_was_sent_read_only(approver_client, owner, organization):
    flow_run = waiting_run(owner)
    approver_client.post(run_url(flow_run, "approve"))
    run_steps(flow_run)
    notification = Notification.objects.get()
    client = logged_in(staff("support@example.com", "view_notification", organizations=[organization]))

    listing = client.get("/admin/integrations/notification/")
    detail = client.get(f"/admin/integrations/notification/{notification.id}/change/")

    assert listing.status_code == 200
    content = listing.content.decode()
    assert "ann@example.com" in content and "Refund approved" in content and escape(organization.name) in content
    assert run_url(flow_run) in content
    assert listing.context["has_add_permission"] is False
    assert detail.status_code == 200 and not detail.context["adminform"].form.fields
    assert client.get("/admin/integrations/notification/add/").status_code == 403
    assert client.post(f"/admin/integrations/notification/{notification.id}/delete/").status_code == 403


# --- The picture ----------------------------------------------------------------------------------------------------


def test_layers_put_each_step_right_of_its_deepest_predecessor():
    assert topological_layers([0, 1, 2, 3], [(0, 1), (0, 2), (1, 3), (2, 3)]) == [[0], [1, 2], [3]]
    assert topological_layers([0, 1, 2, 3], [(0, 1), (1, 2), (0, 2)]) == [[0, 3], [1], [2]]
    assert topological_layers([0, 1], [(0, 5)]) == [[0, 1]]  # an edge to an unknown step is ignored
    assert topological_layers([0, 1, 2], [(0, 1), (1, 2), (2, 1)]) == [[0], [1, 2]]  # a cycle still shows


def test_svg_escapes_step_names():
    svg = dag_svg([DagNode(0, "<script>alert(1)</script>", "failed")], [])

    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
