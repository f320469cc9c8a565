"""A rerun from a step on a real Celery worker (two processes) and a real Redis, as tests/runs/test_engine.py runs
flows: the copied steps are never run again, the chosen step parks for its approval with the rerun's override, and
the approved override is what the side effect sends."""

import pytest

from apps.integrations.models import Notification
from apps.runs.models import TaskRun
from tests.runs.flows import make_flow, make_request, step
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]


def _settled(api, flow_run_id):
    def check():
        body = api.get(f"/api/v1/flow_runs/?id={flow_run_id}").json()
        return body if body["status"] in ("completed", "failed", "cancelled", "awaiting_approval") else None

    return wait_for(check, timeout=60, message=f"run {flow_run_id} to settle")


def test_a_worker_runs_a_rerun_from_the_side_effect_with_its_override_and_copies_the_rest(api, owner):
    flow = make_flow(
        owner,
        [
            step(0, "Format Text", template="Refund approved"),
            step(1, "Send Notification", "Tell ann@example.com"),
            step(2, "Format Text", template="Logged: {{ steps.1.result.notification_id }}"),
        ],
        [(0, 1), (1, 2)],
    )
    request = make_request(owner)
    source = api.post(f"/api/v1/flows/execute?flow_id={flow.id}&flow_request_id={request.id}").json()
    assert _settled(api, source["id"])["status"] == "awaiting_approval"
    api.put(f"/api/v1/flow_runs/approve?flow_run_id={source['id']}")
    source = _settled(api, source["id"])
    assert source["status"] == "completed", source["status_reason"]
    first_step = TaskRun.objects.get(flow_run_id=source["id"], task_operation_index=0)

    rerun = api.post(
        f"/api/v1/flow_runs/rerun_from?flow_run_id={source['id']}&task_operation_index=1",
        {"parameters": {"message": "Refund approved: 20 EUR"}},
        format="json",
    )
    assert rerun.status_code == 200, rerun.json()
    parked = _settled(api, rerun.json()["id"])

    assert parked["status"] == "awaiting_approval", parked["status_reason"]
    copied, waiting, after = parked["task_runs"]
    assert (copied["status"], copied["copied_from"], copied["result"]) == (
        "completed",
        str(first_step.id),
        first_step.result,
    )
    assert copied["start_time"] == source["task_runs"][0]["start_time"]  # not claimed again
    assert waiting["status"] == "awaiting_approval"
    assert {p["name"]: (p["value"], p["source"]) for p in waiting["task_prep_answer"]["parameters"]}["message"] == (
        "Refund approved: 20 EUR",
        "rerun override",
    )
    assert after["status"] == "pending"
    assert Notification.objects.count() == 1

    api.put(f"/api/v1/flow_runs/approve?flow_run_id={parked['id']}")
    done = _settled(api, parked["id"])

    assert done["status"] == "completed", done["status_reason"]
    sent = Notification.objects.filter(flow_run_id=done["id"]).get()
    assert sent.message == "Refund approved: 20 EUR"
    assert done["task_runs"][2]["result"] == {"text": f"Logged: {sent.id}"}
    assert Notification.objects.count() == 2
