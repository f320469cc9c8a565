"""Replays (issue 13 point 4): rerun on the pinned or the latest version, rerun from a step (copies of the steps not
downstream of it, the rest run again with its overrides), and retrying every failed run of a flow.

Steps are run in-process (``run_steps`` plays the worker) with nothing sent to the broker; tests/runs/
test_replays_worker.py runs a rerun from a step on a real worker.
"""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from io import StringIO
from uuid import UUID

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from apps.accounts.models import Organization
from apps.integrations.models import Notification, TaskDefinition
from apps.runs.models import FlowRun, TaskRun
from apps.runs.services import replays
from apps.runs.services.replays import flow_runs_retry_failed
from apps.runs.services.run_creation import flow_execute
from tests.factories import task_definition
from tests.runs.flows import make_flow, make_request, run_steps, set_policy, step

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: None)


def _forked(owner):
    """0 -> 1 -> 2, and 3 on its own (downstream of nothing, upstream of nothing): 3 notifies, so a copy that ran
    again would be seen."""
    return make_flow(
        owner,
        [
            step(0, "Format Text", template="first"),
            step(1, "Format Text", template="{{ steps.0.result.text }} then second"),
            step(2, "Format Text", template="{{ steps.1.result.text }} then third"),
            step(3, "Send Notification", recipient="ann@example.com", message="side branch"),
        ],
        [(0, 1), (1, 2)],
    )


def _completed_run(owner, flow, flow_request=None):
    flow_run = run_steps(flow_execute(user=owner, flow=flow, flow_request=flow_request or make_request(owner)))
    assert flow_run.status == FlowRun.Status.COMPLETED, flow_run.status_reason
    return flow_run


def _rerun_from(api, flow_run, index, body=None):
    return api.post(
        f"/api/v1/flow_runs/rerun_from?flow_run_id={flow_run.id}&task_operation_index={index}", body, format="json"
    )


def _steps(body):
    return {task_run["task_operation_index"]: task_run for task_run in body["task_runs"]}


# --- rerun: pinned or latest ----------------------------------------------------------------------------------------


def test_rerun_pinned_repeats_the_runs_version_and_latest_takes_the_flows_newest(api, owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow = make_flow(owner, [step(0, "Format Text", template="version one")], [])
    source = _completed_run(owner, flow)
    body = {
        "id": str(flow.id),
        "name": flow.name,
        "task_operations": [
            {
                "index": 0,
                "name": "Greet",
                "task_definition": str(task_definition("Format Text").id),
                "parameters": {"template": "version two"},
            }
        ],
        "dependencies": [],
    }
    assert api.put("/api/v1/flows/", body, format="json").json()["version"] == 2

    default = api.post(f"/api/v1/flow_runs/rerun?flow_run_id={source.id}")
    pinned = api.post(f"/api/v1/flow_runs/rerun?flow_run_id={source.id}&version=pinned")
    latest = api.post(f"/api/v1/flow_runs/rerun?flow_run_id={source.id}&version=latest")

    assert [response.status_code for response in (default, pinned, latest)] == [200, 200, 200]
    assert [response.json()["flow_version"] for response in (default, pinned, latest)] == [1, 1, 2]
    assert latest.json()["rerun_of"] == str(source.id)
    ran = run_steps(FlowRun.objects.get(id=latest.json()["id"]))
    assert ran.task_runs.get().result == {"text": "version two"}


def test_rerun_with_an_unknown_version_is_a_422_naming_it(api, owner):
    source = FlowRun.objects.get(id=flow_execute(user=owner, flow=_forked(owner), flow_request=make_request(owner)).id)

    response = api.post(f"/api/v1/flow_runs/rerun?flow_run_id={source.id}&version=newest")

    assert response.status_code == 422
    (item,) = response.json()["detail"]
    assert item["loc"] == ["query", "version"]
    assert ("newest" in item["msg"], item["type"]) == (True, "invalid_choice")
    assert FlowRun.objects.count() == 1


def test_rerun_latest_of_a_deleted_flow_is_409_flow_deleted(api, owner):
    source = flow_execute(user=owner, flow=_forked(owner), flow_request=make_request(owner))
    assert api.delete(f"/api/v1/flows/?id={source.flow_id}").status_code == 200

    for version in ("pinned", "latest"):
        response = api.post(f"/api/v1/flow_runs/rerun?flow_run_id={source.id}&version={version}")
        assert (response.status_code, response.json()["code"]) == (409, "flow_deleted"), version


# --- rerun_from: copies and what runs again -------------------------------------------------------------------------


def test_rerun_from_copies_the_steps_not_downstream_and_runs_the_rest_with_the_override(api, owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    source = _completed_run(owner, _forked(owner))
    assert Notification.objects.count() == 1
    before = {task_run.task_operation_index: task_run for task_run in source.task_runs.all()}

    response = _rerun_from(api, source, 1, {"parameters": {"template": "changed"}})

    assert response.status_code == 200, response.json()
    created = response.json()
    assert (created["rerun_of"], created["rerun_from_index"], created["flow_version"]) == (str(source.id), 1, 1)
    steps = _steps(created)
    for index in (0, 3):  # not downstream of step 1: copied, completed, with the source's preparation and result
        assert steps[index]["status"] == "completed"
        assert steps[index]["copied_from"] == str(before[index].id)
        assert steps[index]["result"] == before[index].result
        assert steps[index]["task_prep_answer"] == before[index].task_prep_answer
    for index in (1, 2):
        assert (steps[index]["status"], steps[index]["copied_from"]) == ("pending", None)
    queued = TaskRun.objects.filter(flow_run_id=created["id"], enqueued_at__isnull=False)
    assert list(queued.values_list("task_operation_index", flat=True)) == [1]  # only the chosen step starts

    done = run_steps(FlowRun.objects.get(id=created["id"]))

    assert done.status == FlowRun.Status.COMPLETED, done.status_reason
    results = {task_run.task_operation_index: task_run for task_run in done.task_runs.all()}
    assert results[1].result == {"text": "changed"}  # an override is a value, as an approver's is
    assert results[2].result == {"text": "changed then third"}
    assert results[1].task_prep_answer["parameters"][0]["source"] == "rerun override"
    assert Notification.objects.count() == 1  # the copied side branch did not notify again
    assert results[3].start_time == before[3].start_time  # never claimed


def test_a_copy_of_a_copy_names_the_task_run_that_produced_the_result(api, owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    source = _completed_run(owner, _forked(owner))
    first = run_steps(FlowRun.objects.get(id=_rerun_from(api, source, 2).json()["id"]))

    second = _rerun_from(api, first, 2).json()

    assert _steps(second)[0]["copied_from"] == str(source.task_runs.get(task_operation_index=0).id)


def test_rerun_from_parks_again_before_a_side_effect_and_the_override_is_what_is_approved(api, owner):
    flow = make_flow(
        owner,
        [step(0, "Format Text", template="Refund approved"), step(1, "Send Notification", "Tell ann@example.com")],
        [(0, 1)],
    )
    source = flow_execute(user=owner, flow=flow, flow_request=make_request(owner))
    run_steps(source)
    api.put(f"/api/v1/flow_runs/approve?flow_run_id={source.id}")
    assert run_steps(source).status == FlowRun.Status.COMPLETED

    created = _rerun_from(api, source, 1, {"parameters": {"message": "Refund approved: 20 EUR"}}).json()
    parked = run_steps(FlowRun.objects.get(id=created["id"]))

    assert (parked.status, parked.approval_status) == (FlowRun.Status.AWAITING_APPROVAL, "pending")
    waiting = parked.task_runs.get(task_operation_index=1)
    assert waiting.status == TaskRun.Status.AWAITING_APPROVAL
    assert {p["name"]: p["value"] for p in waiting.task_prep_answer["parameters"]}["message"] == (
        "Refund approved: 20 EUR"
    )
    assert Notification.objects.count() == 1
    assert api.put(f"/api/v1/flow_runs/approve?flow_run_id={parked.id}").status_code == 200
    assert run_steps(parked).status == FlowRun.Status.COMPLETED
    assert list(Notification.objects.order_by("created_date").values_list("message", flat=True)) == [
        "Refund approved",
        "Refund approved: 20 EUR",
    ]


def test_rerun_from_under_the_always_policy_waits_for_approval_before_any_step(api, owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    source = _completed_run(owner, _forked(owner))
    set_policy(organization, Organization.ApprovalPolicy.ALWAYS)

    created = _rerun_from(api, source, 2).json()

    assert created["status"] == "awaiting_approval"
    assert not TaskRun.objects.filter(flow_run_id=created["id"], enqueued_at__isnull=False).exists()
    api.put(f"/api/v1/flow_runs/approve?flow_run_id={created['id']}")
    done = run_steps(FlowRun.objects.get(id=created["id"]))
    assert done.status == FlowRun.Status.COMPLETED
    assert done.task_runs.get(task_operation_index=2).result == {"text": "first then second then third"}


def test_rerun_from_a_step_whose_copies_did_not_complete_is_409(api, owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow = make_flow(
        owner,
        [
            step(0, "Format Text", template="{{ request.metadata.missing }}"),
            step(1, "Format Text", template="after"),
            step(2, "Format Text", template="alone"),
        ],
        [(0, 1)],
    )
    source = run_steps(flow_execute(user=owner, flow=flow, flow_request=make_request(owner)))
    assert source.status == FlowRun.Status.FAILED

    refused = _rerun_from(api, source, 2)
    allowed = _rerun_from(api, source, 0)  # nothing upstream to copy but step 2, which completed

    assert (refused.status_code, refused.json()["code"]) == (409, "source_step_not_completed")
    assert "step 0 (failed)" in refused.json()["detail"] and "step 1 (skipped)" in refused.json()["detail"]
    assert allowed.status_code == 200
    assert _steps(allowed.json())[2]["copied_from"] == str(source.task_runs.get(task_operation_index=2).id)
    assert FlowRun.objects.count() == 2


def test_rerun_from_refuses_unknown_and_mistyped_overrides_and_unknown_steps(api, owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    source = _completed_run(owner, _forked(owner))

    wrong = _rerun_from(api, source, 3, {"parameters": {"recipient": 5, "colour": "red", "message": "fine"}})
    no_step = _rerun_from(api, source, 4)
    not_a_step = api.post(f"/api/v1/flow_runs/rerun_from?flow_run_id={source.id}&task_operation_index=x")
    unknown_field = _rerun_from(api, source, 1, {"parameter": {}})

    assert wrong.status_code == 422
    items = {tuple(item["loc"]): item for item in wrong.json()["detail"]}
    assert items.keys() == {("body", "parameters", "recipient"), ("body", "parameters", "colour")}
    assert items[("body", "parameters", "recipient")]["type"] == "invalid_override"
    assert items[("body", "parameters", "colour")]["type"] == "unknown"
    assert (no_step.status_code, no_step.json()["detail"][0]["loc"]) == (422, ["query", "task_operation_index"])
    assert "no step 4" in no_step.json()["detail"][0]["msg"]
    assert (not_a_step.status_code, not_a_step.json()["detail"][0]["loc"]) == (422, ["query", "task_operation_index"])
    assert (unknown_field.status_code, unknown_field.json()["detail"][0]["loc"]) == (422, ["body", "parameter"])
    assert FlowRun.objects.count() == 1


def test_rerun_from_checks_the_tasks_it_will_run_not_the_copies(api, owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    source = _completed_run(owner, _forked(owner))
    TaskDefinition.objects.filter(task_name="Send Notification").update(deleted_at=timezone.now())

    copied = _rerun_from(api, source, 1)
    run_again = _rerun_from(api, source, 3)

    assert copied.status_code == 200
    assert (run_again.status_code, run_again.json()["code"]) == (409, "task_definition_removed")


def test_the_replay_endpoints_answer_404_to_another_organization_and_403_to_a_read_only_token(
    api, owner, organization, outsider_api, make_client
):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    source = _completed_run(owner, _forked(owner))
    reader = make_client(owner, scopes=("read",))
    calls = [
        (f"/api/v1/flow_runs/rerun?flow_run_id={source.id}&version=latest", None),
        (f"/api/v1/flow_runs/rerun_from?flow_run_id={source.id}&task_operation_index=1", None),
        (f"/api/v1/flow_runs/retry_failed?flow_id={source.flow_id}", None),
        ("/api/v1/flow_runs/retry_failed", {"flow_id": str(source.flow_id)}),
    ]

    for path, body in calls:
        assert outsider_api.post(path, body, format="json").status_code == 404, path
        assert reader.post(path, body, format="json").status_code == 403, path
    assert FlowRun.objects.count() == 1


# --- retry_failed ---------------------------------------------------------------------------------------------------


def _failing_flow(owner):
    """One step that fails until the request's metadata has ``name``."""
    return make_flow(owner, [step(0, "Format Text", template="{{ request.metadata.name }}")], [])


def _failed_runs(owner, flow, count):
    runs = [run_steps(flow_execute(user=owner, flow=flow, flow_request=make_request(owner))) for _ in range(count)]
    assert all(flow_run.status == FlowRun.Status.FAILED for flow_run in runs)
    return runs


def test_retry_failed_retries_every_failed_run_of_the_flow_once(api, owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow = _failing_flow(owner)
    failed = _failed_runs(owner, flow, 3)
    other_flow_failed = _failed_runs(owner, _failing_flow(owner), 1)[0]
    completed = _completed_run(owner, make_flow(owner, [step(0, "Format Text", template="ok")], []))

    first = api.post(f"/api/v1/flow_runs/retry_failed?flow_id={flow.id}")
    second = api.post("/api/v1/flow_runs/retry_failed", {"flow_id": str(flow.id)}, format="json")

    assert (first.status_code, first.json()) == (200, {"queued": 3, "skipped": 0, "more": False})
    assert second.json() == {"queued": 0, "skipped": 0, "more": False}
    statuses = dict(FlowRun.objects.values_list("id", "status"))
    assert {statuses[flow_run.id] for flow_run in failed} == {FlowRun.Status.IN_PROGRESS}
    assert statuses[other_flow_failed.id] == FlowRun.Status.FAILED
    assert statuses[completed.id] == FlowRun.Status.COMPLETED
    assert set(TaskRun.objects.filter(flow_run__in=failed).values_list("status", flat=True)) == {"pending"}


def test_retry_failed_since_takes_the_runs_that_failed_from_then(api, owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow = _failing_flow(owner)
    old, recent = _failed_runs(owner, flow, 2)
    FlowRun.objects.filter(id=old.id).update(end_time=timezone.now() - timedelta(days=3))
    since = (timezone.now() - timedelta(days=1)).date().isoformat()

    response = api.post("/api/v1/flow_runs/retry_failed", {"flow_id": str(flow.id), "since": since}, format="json")

    assert response.json()["queued"] == 1
    assert FlowRun.objects.get(id=recent.id).status == FlowRun.Status.IN_PROGRESS
    assert FlowRun.objects.get(id=old.id).status == FlowRun.Status.FAILED


def test_retry_failed_is_bounded_by_its_limit(api, owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow = _failing_flow(owner)
    _failed_runs(owner, flow, 3)

    with override_settings(NEENA_RETRY_FAILED_LIMIT=2):
        first = api.post(f"/api/v1/flow_runs/retry_failed?flow_id={flow.id}").json()
        second = api.post(f"/api/v1/flow_runs/retry_failed?flow_id={flow.id}").json()

    assert first == {"queued": 2, "skipped": 0, "more": True}
    assert second == {"queued": 1, "skipped": 0, "more": False}


def test_retry_failed_refuses_bad_input(api, owner):
    flow = _failing_flow(owner)

    missing = api.post("/api/v1/flow_runs/retry_failed")
    bad_since = api.post(f"/api/v1/flow_runs/retry_failed?flow_id={flow.id}&since=yesterday")
    twice = api.post(f"/api/v1/flow_runs/retry_failed?flow_id={flow.id}", {"flow_id": str(UUID(int=1))}, format="json")
    unknown = api.post(f"/api/v1/flow_runs/retry_failed?flow_id={UUID(int=1)}")

    assert (missing.status_code, missing.json()["detail"][0]["loc"]) == (422, ["query", "flow_id"])
    assert (bad_since.status_code, bad_since.json()["detail"][0]["loc"]) == (422, ["query", "since"])
    assert (twice.status_code, twice.json()["detail"][0]["loc"]) == (422, ["body", "flow_id"])
    assert unknown.status_code == 404


def test_two_retry_failed_calls_at_once_retry_each_run_once(owner, organization, monkeypatch):
    """The second call runs entirely while the first is between reading the failed runs and retrying the first of
    them: each run is retried by exactly one of the two."""
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow = _failing_flow(owner)
    failed = _failed_runs(owner, flow, 3)
    retry = replays.run_retry
    calls = []
    reports = []

    def interleaved(**kwargs):
        if not reports:
            reports.append(None)
            reports.append(flow_runs_retry_failed(flow=flow, user=owner))  # the other call, meanwhile
        calls.append(kwargs["flow_run"].id)
        return retry(**kwargs)

    monkeypatch.setattr(replays, "run_retry", interleaved)
    first = flow_runs_retry_failed(flow=flow, user=owner)

    assert (reports[1].queued, reports[1].skipped) == (3, 0)
    assert (first.queued, first.skipped) == (0, 3)
    assert sorted(calls) == sorted([flow_run.id for flow_run in failed] * 2)
    assert set(FlowRun.objects.filter(flow=flow).values_list("status", flat=True)) == {FlowRun.Status.IN_PROGRESS}


# --- manage.py runs retry -------------------------------------------------------------------------------------------


def test_the_command_retries_the_failed_runs_with_a_progress_bar(owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow = _failing_flow(owner)
    old, *recent = _failed_runs(owner, flow, 3)
    FlowRun.objects.filter(id=old.id).update(end_time=timezone.now() - timedelta(days=3))
    out = StringIO()

    call_command("runs", "retry", "--flow", str(flow.id), "--since", timezone.now().date().isoformat(), stdout=out)

    assert "] 2/2" in out.getvalue()
    assert "Queued 2 failed runs again; skipped 0." in out.getvalue()
    assert {FlowRun.objects.get(id=flow_run.id).status for flow_run in recent} == {FlowRun.Status.IN_PROGRESS}
    assert FlowRun.objects.get(id=old.id).status == FlowRun.Status.FAILED
    assert FlowRun.objects.get(id=recent[0].id).modified_by_email == "manage.py runs retry"


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--flow", "not-a-uuid"], "no flow has the id"),
        (["--flow", str(UUID(int=1))], "no flow has the id"),
        (["--since", "last week"], "not an ISO 8601 date"),
    ],
)
def test_the_command_refuses_a_bad_flow_or_date(owner, arguments, message):
    flow = _failing_flow(owner)
    arguments = arguments if arguments[0] == "--flow" else ["--flow", str(flow.id), *arguments]

    with pytest.raises(CommandError, match=message):
        call_command("runs", "retry", *arguments, stdout=StringIO())


def test_a_retry_of_a_run_whose_flow_or_request_was_deleted_is_409_and_the_run_stays_readable(api, owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow = _failing_flow(owner)
    flow_deleted, request_deleted = _failed_runs(owner, flow, 2)
    assert api.delete(f"/api/v1/flow_requests/?id={request_deleted.flow_request_id}").status_code == 200

    retried = api.post(f"/api/v1/flow_runs/retry?flow_run_id={request_deleted.id}")
    assert (retried.status_code, retried.json()["code"]) == (409, "flow_request_deleted")

    assert api.delete(f"/api/v1/flows/?id={flow.id}").status_code == 200
    retried = api.post(f"/api/v1/flow_runs/retry?flow_run_id={flow_deleted.id}")
    assert (retried.status_code, retried.json()["code"]) == (409, "flow_deleted")

    read = api.get(f"/api/v1/flow_runs/?id={flow_deleted.id}")
    assert (read.status_code, read.json()["status"]) == (200, "failed")
    assert set(FlowRun.objects.values_list("status", flat=True)) == {FlowRun.Status.FAILED}
    assert set(TaskRun.objects.values_list("status", flat=True)) == {TaskRun.Status.FAILED}


def test_retry_failed_of_a_deleted_flow_is_409_and_skips_runs_whose_request_was_deleted(api, owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow = _failing_flow(owner)
    kept, request_deleted = _failed_runs(owner, flow, 2)
    assert api.delete(f"/api/v1/flow_requests/?id={request_deleted.flow_request_id}").status_code == 200

    report = api.post(f"/api/v1/flow_runs/retry_failed?flow_id={flow.id}")
    assert report.json() == {"queued": 1, "skipped": 1, "more": False}
    assert FlowRun.objects.get(id=request_deleted.id).status == FlowRun.Status.FAILED
    assert FlowRun.objects.get(id=kept.id).status == FlowRun.Status.IN_PROGRESS

    other = _failed_runs(owner, flow, 1)[0]
    assert api.delete(f"/api/v1/flows/?id={flow.id}").status_code == 200
    refused = api.post(f"/api/v1/flow_runs/retry_failed?flow_id={flow.id}")
    assert (refused.status_code, refused.json()["code"]) == (409, "flow_deleted")
    with pytest.raises(CommandError, match="The flow was deleted"):
        call_command("runs", "retry", "--flow", str(flow.id), stdout=StringIO())
    assert FlowRun.objects.get(id=other.id).status == FlowRun.Status.FAILED


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks across connections: PostgreSQL only")
@pytest.mark.django_db(transaction=True)
def test_two_retry_failed_calls_in_two_connections_retry_each_run_once(owner, organization, monkeypatch):
    """Both calls have read the same failed runs before either retries one; the row lock and the conditional move
    from failed let exactly one of them retry each run."""
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow = _failing_flow(owner)
    failed = _failed_runs(owner, flow, 4)
    both_listed = threading.Barrier(2, timeout=30)
    retry = replays.run_retry
    listed = threading.local()

    def after_both_listed(**kwargs):
        if not getattr(listed, "done", False):
            listed.done = True
            both_listed.wait()
        return retry(**kwargs)

    monkeypatch.setattr(replays, "run_retry", after_both_listed)

    def call():
        try:
            return flow_runs_retry_failed(flow=flow, user=owner)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = [future.result() for future in [pool.submit(call), pool.submit(call)]]

    assert sum(report.queued for report in reports) == len(failed)
    assert sum(report.skipped for report in reports) == len(failed)
    assert set(FlowRun.objects.filter(flow=flow).values_list("status", flat=True)) == {FlowRun.Status.IN_PROGRESS}


def test_a_repeated_rerun_from_or_retry_failed_with_one_idempotency_key_acts_once(api, owner, organization):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    source = _completed_run(owner, _forked(owner))
    flow = _failing_flow(owner)
    _failed_runs(owner, flow, 1)
    path = f"/api/v1/flow_runs/rerun_from?flow_run_id={source.id}&task_operation_index=1"
    body = {"parameters": {"template": "again"}}

    first = api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="replay")
    repeated = api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="replay")
    retried = api.post(f"/api/v1/flow_runs/retry_failed?flow_id={flow.id}", HTTP_IDEMPOTENCY_KEY="batch")
    retried_again = api.post(f"/api/v1/flow_runs/retry_failed?flow_id={flow.id}", HTTP_IDEMPOTENCY_KEY="batch")

    assert repeated.content == first.content
    assert FlowRun.objects.filter(rerun_of=source).count() == 1
    assert retried.json()["queued"] == retried_again.json()["queued"] == 1
