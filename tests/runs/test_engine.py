"""The engine end to end: a real Celery worker (two processes) on a real Redis runs flows from the API."""

import pytest

from apps.accounts.models import Organization
from apps.integrations.models import Notification
from apps.runs.models import FlowResult, FlowRun, TaskRun
from tests.runs.flows import diamond, make_flow, make_request, set_policy, step
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]


def _finished(api, flow_run_id):
    def check():
        body = api.get(f"/api/v1/flow_runs/?id={flow_run_id}").json()
        return body if body["status"] in ("completed", "failed", "cancelled", "awaiting_approval") else None

    return wait_for(check, timeout=60, message=f"run {flow_run_id} to settle")


def _execute(api, flow, flow_request):
    response = api.post(f"/api/v1/flows/execute?flow_id={flow.id}&flow_request_id={flow_request.id}")
    assert response.status_code == 200, response.content
    return response.json()


def test_sequential_flow_prepares_each_step_and_records_the_result(api, owner, organization):
    flow = make_flow(
        owner,
        [
            step(
                0,
                "Format Text",
                template="Dear {name}, your order {order} has shipped. It arrives Monday. Thanks!",
                values="{{ request.metadata.order_details }}",
            ),
            step(1, "Summarize Text", "Keep 1 sentences"),
            step(2, "Set Flow Result"),
        ],
        [(0, 1), (1, 2)],
    )
    flow_request = make_request(
        owner, "Tell Ann about her order.", [{"order_details": {"name": "Ann", "order": "#42"}}]
    )

    created = _execute(api, flow, flow_request)
    run = _finished(api, created["id"])

    assert created["status"] in ("pending", "in_progress")
    assert run["status"] == "completed", (run["status_reason"], [t["error"] for t in run["task_runs"]])
    first, second, third = run["task_runs"]
    assert first["result"] == {"text": "Dear Ann, your order #42 has shipped. It arrives Monday. Thanks!"}
    assert first["task_prep_answer"]["parameters"][0]["source"] == "binding"
    assert [p["source"] for p in second["task_prep_answer"]["parameters"]] == ["step 0's result", "instruction text"]
    assert second["result"] == {"summary": "Dear Ann, your order #42 has shipped."}
    assert third["result"] == {"body": "Dear Ann, your order #42 has shipped."}
    assert first["task_prep_prompt"]["messages"][0]["role"] == "system"
    with_result = api.get(f"/api/v1/flow_runs/with_flow_result?id={run['id']}").json()
    assert with_result["result"]["body"] == "Dear Ann, your order #42 has shipped."
    assert with_result["result"]["integration_entity_id"] == str(flow_request.id)


def test_wide_diamond_runs_every_branch_once_and_joins_after_all(api, owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    width = 12
    flow = diamond(owner, width)

    run = _finished(api, _execute(api, flow, make_request(owner))["id"])

    assert run["status"] == "completed", (run["status_reason"], [t["error"] for t in run["task_runs"]])
    task_runs = TaskRun.objects.filter(flow_run_id=run["id"])
    assert task_runs.count() == width + 2
    assert all(task_run.status == TaskRun.Status.COMPLETED for task_run in task_runs)
    assert Notification.objects.filter(flow_run_id=run["id"]).count() == width
    join = task_runs.get(task_operation_index=width + 1)
    branches = task_runs.filter(task_operation_index__in=range(1, width + 1))
    assert join.start_time >= max(branch.end_time for branch in branches)
    assert join.result["text"].count(" + ") == width - 1


def test_side_effect_parks_the_run_until_approved_with_overrides(api, owner, organization):
    flow = make_flow(
        owner,
        [step(0, "Format Text", template="Refund approved"), step(1, "Send Notification", "Tell ann@example.com")],
        [(0, 1)],
    )

    run = _finished(api, _execute(api, flow, make_request(owner))["id"])

    assert run["status"] == "awaiting_approval"
    assert run["approval_status"] == "pending"
    parked = run["task_runs"][1]
    assert parked["status"] == "awaiting_approval"
    assert {p["name"]: p["value"] for p in parked["task_prep_answer"]["parameters"]} == {
        "recipient": "ann@example.com",
        "message": "Refund approved",
    }
    assert not Notification.objects.exists()

    approved = api.put(
        f"/api/v1/flow_runs/approve?flow_run_id={run['id']}",
        {"parameters": {"message": "Refund approved: 20 EUR"}, "comment": "checked the amount"},
        format="json",
    )
    assert approved.status_code == 200
    assert approved.json()["approval_status"] == "approved"
    assert approved.json()["approved_by"] == owner.email
    run = _finished(api, run["id"])

    assert run["status"] == "completed"
    notification = Notification.objects.get()
    assert notification.message == "Refund approved: 20 EUR"
    decision = FlowRun.objects.get(id=run["id"]).approval_decisions.get()
    assert decision.overrides == [
        {"name": "message", "old_value": "Refund approved", "new_value": "Refund approved: 20 EUR"}
    ]
    assert decision.comment == "checked the amount"
    second = api.put(f"/api/v1/flow_runs/approve?flow_run_id={run['id']}")
    assert second.status_code == 409


def test_reject_cancels_and_nothing_is_sent(api, owner):
    flow = make_flow(owner, [step(0, "Send Notification", 'Tell bob@example.com "hello"')], [])
    run = _finished(api, _execute(api, flow, make_request(owner))["id"])

    rejected = api.put(
        f"/api/v1/flow_runs/reject?flow_run_id={run['id']}", {"comment": "wrong customer"}, format="json"
    )

    assert rejected.status_code == 200
    assert rejected.json()["status"] == "cancelled"
    assert rejected.json()["approval_status"] == "rejected"
    assert "wrong customer" in rejected.json()["status_reason"]
    assert rejected.json()["task_runs"][0]["status"] == "cancelled"
    assert not Notification.objects.exists()
    assert api.put(f"/api/v1/flow_runs/approve?flow_run_id={run['id']}").status_code == 409


def test_always_policy_parks_before_the_first_step(api, owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.ALWAYS)
    flow = make_flow(owner, [step(0, "Format Text", template="hi")], [])

    created = _execute(api, flow, make_request(owner))

    assert created["status"] == "awaiting_approval"
    assert created["task_runs"][0]["status"] == "pending"
    api.put(f"/api/v1/flow_runs/approve?flow_run_id={created['id']}")
    assert _finished(api, created["id"])["status"] == "completed"


def test_missing_parameter_fails_the_step_without_calling_and_retry_resumes(api, owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow = make_flow(
        owner,
        [
            step(0, "Format Text", template="Order {order}", values="{{ request.metadata.values }}"),
            step(1, "Send Notification", message="{{ steps.0.result.text }}"),
            step(2, "Format Text", template="done"),
        ],
        [(0, 1), (1, 2)],
    )
    flow_request = make_request(owner, "Notify the customer.", {"values": {"order": "7"}})

    run = _finished(api, _execute(api, flow, flow_request)["id"])

    assert run["status"] == "failed"
    failed, skipped = run["task_runs"][1], run["task_runs"][2]
    assert failed["status"] == "failed"
    assert "recipient" in failed["error"]
    assert skipped["status"] == "skipped"
    assert "recipient" in run["status_reason"]
    assert not Notification.objects.exists()
    first_end = run["task_runs"][0]["end_time"]

    flow_request.request_metadata = {"values": {"order": "7"}, "recipient": "ann@example.com"}
    flow_request.save()
    assert api.post(f"/api/v1/flow_runs/retry?flow_run_id={run['id']}").status_code == 200
    run = _finished(api, run["id"])

    assert run["status"] == "completed"
    assert run["task_runs"][0]["end_time"] == first_end  # the completed step was kept, not re-run
    assert Notification.objects.get().recipient == "ann@example.com"
    assert api.post(f"/api/v1/flow_runs/retry?flow_run_id={run['id']}").status_code == 409


def test_cancel_and_rerun(api, owner):
    flow = make_flow(owner, [step(0, "Send Notification", 'Tell bob@example.com "hello"')], [])
    run = _finished(api, _execute(api, flow, make_request(owner))["id"])

    cancelled = api.post(f"/api/v1/flow_runs/cancel?flow_run_id={run['id']}", {"comment": "not needed"}, format="json")
    again = api.post(f"/api/v1/flow_runs/cancel?flow_run_id={run['id']}")
    rerun = api.post(f"/api/v1/flow_runs/rerun?flow_run_id={run['id']}")

    assert cancelled.json()["status"] == "cancelled"
    assert again.status_code == 409
    assert rerun.status_code == 200
    assert rerun.json()["id"] != run["id"]
    assert rerun.json()["rerun_of"] == run["id"]
    assert _finished(api, rerun.json()["id"])["status"] == "awaiting_approval"


def test_flow_runs_create_is_execute(api, owner):
    flow = make_flow(owner, [step(0, "Format Text", template="hi")], [])
    flow_request = make_request(owner)

    response = api.post(
        "/api/v1/flow_runs/",
        {"flow": str(flow.id), "flow_request": str(flow_request.id), "status": "pending", "triggered_by": "x"},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["triggered_by"] == owner.email
    assert _finished(api, response.json()["id"])["status"] == "completed"
    assert FlowResult.objects.count() == 0
