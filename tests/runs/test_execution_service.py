"""The step pipeline as a service, in-process: retries with backoff, failures, result caps, policies, timeouts."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from apps.accounts.models import Membership, Organization
from apps.credentials.services.credentials import credential_upsert
from apps.flows.models import TaskOperation
from apps.integrations.execution import TransientTaskError
from apps.integrations.models import Notification
from apps.runs.models import FlowRun, TaskRun
from apps.runs.services import step_execution
from apps.runs.services.approval import approvals_time_out
from apps.runs.services.control import run_cancel
from apps.runs.services.memory import RunMemory
from apps.runs.services.run_creation import flow_execute
from apps.runs.services.step_execution import task_run_execute
from tests.fakes.openai_server import FakeOpenAI
from tests.runs.flows import make_flow, make_request, set_policy, step

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    """These tests drive steps by hand; nothing is sent to the broker."""
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: None)
    monkeypatch.setattr("apps.runs.services.step_execution.send_steps", lambda steps: None)


def _run(owner, steps, edges=()):
    flow = make_flow(owner, steps, list(edges))
    return flow_execute(user=owner, flow=flow, flow_request=make_request(owner))


def _step_run(flow_run, index=0):
    return TaskRun.objects.get(flow_run=flow_run, task_operation_index=index)


def _implementation(monkeypatch, function):
    monkeypatch.setattr("apps.integrations.execution.task_implementation", lambda definition: function)


def test_transient_errors_retry_with_backoff_then_give_up(owner, organization, monkeypatch):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow_run = _run(owner, [step(0, "Format Text", template="x")])
    calls = []

    def flaky(context, **parameters):
        calls.append(context.idempotency_key)
        raise TransientTaskError("503 from the service", retry_after=7)

    _implementation(monkeypatch, flaky)
    task_run = _step_run(flow_run)
    outcome = task_run_execute(task_run_id=task_run.id)

    assert outcome.retry is not None and outcome.retry_in == 7
    task_run.refresh_from_db()
    assert (task_run.status, task_run.attempt) == (TaskRun.Status.PENDING, 1)
    for _ in range(3):
        task_run_execute(task_run_id=task_run.id)
    task_run.refresh_from_db()
    assert task_run.status == TaskRun.Status.FAILED
    assert "gave up after 4 attempts" in task_run.error
    assert calls == [f"{task_run.id}:{attempt}" for attempt in range(4)]
    assert FlowRun.objects.get(id=flow_run.id).status == FlowRun.Status.FAILED


def test_backoff_without_retry_after_is_bounded_exponential(owner, organization, monkeypatch):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow_run = _run(owner, [step(0, "Format Text", template="x")])
    _implementation(monkeypatch, lambda context, **p: (_ for _ in ()).throw(TransientTaskError("timeout")))
    task_run = _step_run(flow_run)
    TaskRun.objects.filter(id=task_run.id).update(attempt=2)

    outcome = task_run_execute(task_run_id=task_run.id)

    backoff = task_run.task_operation.task_definition.retry_policy["backoff_seconds"]
    assert 0 <= outcome.retry_in <= backoff * 4


def test_a_crashing_connector_fails_its_step_not_the_worker(owner, organization, monkeypatch):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow_run = _run(owner, [step(0, "Format Text", template="x")])
    _implementation(monkeypatch, lambda context, **parameters: 1 / 0)

    task_run_execute(task_run_id=_step_run(flow_run).id)

    assert "ZeroDivisionError" in _step_run(flow_run).error
    assert FlowRun.objects.get(id=flow_run.id).status == FlowRun.Status.FAILED


@override_settings(NEENA_MAX_RESULT_BYTES=100)
def test_oversized_results_are_stored_truncated(owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow_run = _run(owner, [step(0, "Format Text", template="y" * 500)])

    task_run_execute(task_run_id=_step_run(flow_run).id)

    result = _step_run(flow_run).result
    assert result["truncated"] is True and result["size_bytes"] > 500


def test_a_second_delivery_of_the_same_job_does_nothing(owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow_run = _run(owner, [step(0, "Send Notification", 'Tell a@example.com "x"')])
    task_run = _step_run(flow_run)

    task_run_execute(task_run_id=task_run.id)
    outcome = task_run_execute(task_run_id=task_run.id)

    assert outcome.ready == [] and outcome.retry is None
    assert Notification.objects.count() == 1


def test_never_policy_does_not_park(owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow_run = _run(owner, [step(0, "Send Notification", 'Tell a@example.com "x"')])

    task_run_execute(task_run_id=_step_run(flow_run).id)

    assert FlowRun.objects.get(id=flow_run.id).status == FlowRun.Status.COMPLETED


@pytest.mark.parametrize(
    ("action", "expected_run", "notified"),
    [("cancel", FlowRun.Status.CANCELLED, 0), ("continue", FlowRun.Status.IN_PROGRESS, 0)],
)
def test_approval_timeout_follows_the_policy(owner, organization, action, expected_run, notified):
    set_policy(
        organization,
        Organization.ApprovalPolicy.SIDE_EFFECTS,
        approval_timeout=timedelta(minutes=10),
        approval_timeout_action=action,
    )
    flow_run = _run(owner, [step(0, "Send Notification", 'Tell a@example.com "x"')])
    task_run_execute(task_run_id=_step_run(flow_run).id)

    assert approvals_time_out(now=timezone.now() + timedelta(minutes=5)) == []
    assert approvals_time_out(now=timezone.now() + timedelta(minutes=11)) == [flow_run.id]

    flow_run.refresh_from_db()
    assert flow_run.status == expected_run
    assert flow_run.approved_by == "approval timeout"
    assert Notification.objects.count() == notified


def test_self_approval_can_be_forbidden(api, owner, organization, teammate, make_client):
    set_policy(organization, Organization.ApprovalPolicy.SIDE_EFFECTS, forbid_self_approval=True)
    Membership.objects.filter(user=teammate).update(role=Membership.Role.APPROVER)
    flow_run = _run(owner, [step(0, "Send Notification", 'Tell a@example.com "x"')])
    task_run_execute(task_run_id=_step_run(flow_run).id)

    own = api.put(f"/api/v1/flow_runs/approve?flow_run_id={flow_run.id}")
    other = make_client(teammate).put(f"/api/v1/flow_runs/approve?flow_run_id={flow_run.id}")

    assert own.status_code == 403
    assert other.status_code == 200


def test_approving_needs_the_approve_scope(owner, organization, make_client):
    flow_run = _run(owner, [step(0, "Send Notification", 'Tell a@example.com "x"')])
    task_run_execute(task_run_id=_step_run(flow_run).id)

    response = make_client(owner, scopes=("read", "write")).put(f"/api/v1/flow_runs/approve?flow_run_id={flow_run.id}")

    assert response.status_code == 403
    assert "approve" in response.json()["detail"]


def test_unknown_override_is_422_and_nothing_changes(api, owner, organization):
    flow_run = _run(owner, [step(0, "Send Notification", 'Tell a@example.com "x"')])
    task_run_execute(task_run_id=_step_run(flow_run).id)

    response = api.put(
        f"/api/v1/flow_runs/approve?flow_run_id={flow_run.id}", {"parameters": {"subject": "x"}}, format="json"
    )

    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "loc": ["body", "parameters", "subject"],
            "msg": "No step waiting for approval has a parameter 'subject'.",
            "type": "unknown",
        }
    ]
    assert FlowRun.objects.get(id=flow_run.id).approval_status == FlowRun.ApprovalStatus.PENDING


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"recipient": 5}, [(["body", "parameters", "recipient"], "invalid_override")]),
        ({"message": 5}, [(["body", "parameters", "message"], "invalid_override")]),
        (
            {"message": ["x"], "recipient": "b@example.com", "colour": "red"},
            [(["body", "parameters", "message"], "invalid_override"), (["body", "parameters", "colour"], "unknown")],
        ),
    ],
)
def test_an_override_of_the_wrong_type_is_422_naming_it(api, owner, organization, overrides, expected):
    flow_run = _run(owner, [step(0, "Send Notification", 'Tell a@example.com "x"')])
    task_run = _step_run(flow_run)
    task_run_execute(task_run_id=task_run.id)
    prepared = TaskRun.objects.get(id=task_run.id).task_prep_answer

    response = api.put(f"/api/v1/flow_runs/approve?flow_run_id={flow_run.id}", {"parameters": overrides}, format="json")

    assert response.status_code == 422
    assert [(item["loc"], item["type"]) for item in response.json()["detail"]] == expected
    assert FlowRun.objects.get(id=flow_run.id).approval_status == FlowRun.ApprovalStatus.PENDING
    assert TaskRun.objects.get(id=task_run.id).task_prep_answer == prepared


def test_an_override_of_the_right_type_is_applied(api, owner, organization):
    flow_run = _run(owner, [step(0, "Send Notification", 'Tell a@example.com "x"')])
    task_run_execute(task_run_id=_step_run(flow_run).id)

    response = api.put(
        f"/api/v1/flow_runs/approve?flow_run_id={flow_run.id}", {"parameters": {"message": "changed"}}, format="json"
    )

    assert response.status_code == 200
    parameters = {p["name"]: p for p in _step_run(flow_run).task_prep_answer["parameters"]}
    assert parameters["message"]["value"] == "changed"
    assert parameters["message"]["source"] == "approver override"


def test_execute_validates_and_hides_foreign_objects(api, owner, outsider_api):
    flow = make_flow(owner, [step(0, "Format Text", template="x")], [])
    flow_request = make_request(owner)

    missing = api.post(f"/api/v1/flows/execute?flow_id={flow.id}")
    foreign = outsider_api.post(f"/api/v1/flows/execute?flow_id={flow.id}&flow_request_id={flow_request.id}")

    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["query", "flow_request_id"]
    assert foreign.status_code == 404
    assert not FlowRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_broker_that_is_down_loses_nothing(api, owner, organization, monkeypatch):
    from kombu.exceptions import OperationalError

    from neena.celery import app

    monkeypatch.undo()  # this test sends for real: through a broker that refuses
    monkeypatch.setattr(app, "send_task", lambda *args, **kwargs: (_ for _ in ()).throw(OperationalError("down")))
    flow = make_flow(owner, [step(0, "Format Text", template="x")], [])
    flow_request = make_request(owner)

    response = api.post(f"/api/v1/flows/execute?flow_id={flow.id}&flow_request_id={flow_request.id}")

    assert response.status_code == 200
    assert TaskRun.objects.get(flow_run_id=response.json()["id"]).enqueued_at is not None


def test_a_cancel_stops_the_core_steps_a_job_has_readied_but_not_started(owner, organization, monkeypatch):
    """A job runs one readied step next in place; the others are queued, so a cancel in between stops them."""
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow_run = _run(
        owner,
        [step(index, "Format Text", template=f"line {index}") for index in range(5)],
        [(0, child) for child in range(1, 5)],
    )
    real_call = step_execution.task_call

    def cancel_during_the_first_child(definition, context, values):
        if values["template"] == "line 1":
            run_cancel(flow_run=FlowRun.objects.get(id=flow_run.id), user=owner)
        return real_call(definition, context, values)

    monkeypatch.setattr(step_execution, "task_call", cancel_during_the_first_child)
    step_execution.task_runs_execute(task_run_ids=[_step_run(flow_run).id], time_limit_seconds=600)

    statuses = dict(flow_run.task_runs.values_list("task_operation_index", "status"))
    assert statuses == {0: "completed", 1: "completed", 2: "cancelled", 3: "cancelled", 4: "cancelled"}
    assert FlowRun.objects.get(id=flow_run.id).status == FlowRun.Status.CANCELLED


def test_a_join_below_a_failed_branch_ends_the_run_when_the_other_branch_completes(owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow_run = _run(
        owner,
        [
            step(0, "Format Text", template="start"),
            step(1, "Format Text", template="{{ request.metadata.missing }}"),
            step(2, "Format Text", template="other branch"),
            step(3, "Format Text", template="join"),
        ],
        [(0, 1), (0, 2), (1, 3), (2, 3)],
    )
    task_run_execute(task_run_id=_step_run(flow_run, 0).id)
    task_run_execute(task_run_id=_step_run(flow_run, 1).id)  # fails: the join can never run
    assert FlowRun.objects.get(id=flow_run.id).status == FlowRun.Status.IN_PROGRESS

    task_run_execute(task_run_id=_step_run(flow_run, 2).id)

    statuses = dict(flow_run.task_runs.values_list("task_operation_index", "status"))
    assert statuses == {0: "completed", 1: "failed", 2: "completed", 3: "skipped"}
    assert FlowRun.objects.get(id=flow_run.id).status == FlowRun.Status.FAILED  # not left to the sweeper


def test_a_step_whose_operation_an_edit_removed_before_versions_is_queued_to_fail(owner, organization):
    """Before flows had versions, an edit deleted steps under runs (the task run's link was set to null); such task
    runs may still be around after the migration."""
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow_run = _run(owner, [step(0, "Format Text", template="a"), step(1, "Format Text", template="b")], [(0, 1)])
    memory = RunMemory(flow_run)
    legacy = _step_run(flow_run, 1)
    TaskRun.objects.filter(id=legacy.id).update(task_operation=None)
    TaskOperation.objects.filter(flow_version=flow_run.flow_version, index=1).delete()

    ready = memory.ready_step(1, legacy.id)
    task_run_execute(task_run_id=_step_run(flow_run, 0).id)
    task_run_execute(task_run_id=legacy.id)

    assert ready.queue == settings.NEENA_ORCHESTRATION_QUEUE
    legacy.refresh_from_db()
    assert (legacy.status, legacy.error) == (TaskRun.Status.FAILED, "Step removed.")


def test_a_step_asks_the_model_and_calls_its_service_with_no_transaction_open(owner, organization):
    """The llm preparer's call and the connector's call happen outside any transaction and row lock: the network
    guard (tests/network_guard.py) fails this test if either is made inside one."""
    model = FakeOpenAI()
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    # The fake model is on loopback, which a user's base_url may reach only when allow-listed (the egress guard).
    allow_loopback = override_settings(NEENA_HTTP_ALLOWLIST=["127.0.0.1"])
    allow_loopback.enable()
    credential_upsert(
        user=owner, integration_short_name="llm", api_key="sk-test", config={"base_url": model.base_url, "model": "m"}
    )
    text = "The payment service failed at noon. Payments recovered by one."
    model.answer({"parameters": [{"name": "text", "value": text, "explanation": "The request's text."}]})
    model.answer("Payments failed and recovered.")
    model_settings = {"NEENA_LLM_BASE_URL": model.base_url, "NEENA_LLM_MODEL": "m", "NEENA_LLM_MAX_RETRIES": 0}
    try:
        with override_settings(NEENA_PREPARER="llm", **model_settings):
            flow_run = _run(owner, [step(0, "Summarize Text with LLM", "Summarize the incident.")])
            task_run_execute(task_run_id=_step_run(flow_run, 0).id)
    finally:
        model.stop()
        allow_loopback.disable()

    task_run = _step_run(flow_run, 0)
    assert (task_run.status, task_run.error) == (TaskRun.Status.COMPLETED, "")
    assert task_run.task_prep_answer["preparer"] == "llm"
    assert task_run.result == {"summary": "Payments failed and recovered."}
    assert len(model.requests) == 2  # the preparation, then the step's own call
