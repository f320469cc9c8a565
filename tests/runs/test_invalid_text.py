"""Invalid text never re-runs a side effect.

A step whose service answers text that cannot be stored (a lone surrogate, which UTF-8 cannot encode; NUL, which
PostgreSQL's text and jsonb refuse) fails once, with a clear error and a copy of the result with U+FFFD in place of
that text; and a step whose call may have happened is never called again by the sweeper, whether its worker died or
the write of its end failed.
"""

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import DataError
from django.test import override_settings
from django.utils import timezone

from apps.accounts.models import Organization
from apps.runs.models import FlowRun, TaskRun
from apps.runs.queueing import ReadyStep
from apps.runs.services import step_ends
from apps.runs.services.control import runs_sweep
from apps.runs.services.run_creation import flow_execute
from apps.runs.services.step_execution import task_run_execute
from tests.fakes.server import serve
from tests.runs.flows import make_flow, make_request, set_policy, step
from tests.workers import CeleryWorker, other_workers_paused, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

WORKER_NAME = "invalid-text"
# What the service answers: JSON whose escape is a lone surrogate, as Python's json module reads it.
LONE_SURROGATE_JSON = b'{"x": "\\ud800", "ok": "fine"}'


@dataclass
class CountingService:
    """A fake service on 127.0.0.1 answering ``answer`` as JSON to every request, and counting them."""

    answer: bytes
    server: ThreadingHTTPServer | None = None
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        request.rfile.read(int(request.headers.get("Content-Length") or 0))
        with self.lock:
            self.calls += 1
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(self.answer)))
        request.end_headers()
        request.wfile.write(self.answer)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/orders"


@pytest.fixture
def service() -> Iterator[CountingService]:
    fake = CountingService(answer=LONE_SURROGATE_JSON)
    fake.server = serve(fake.handle)
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def http_worker(transactional_db, redis_server) -> Iterator[CeleryWorker]:
    """This test's own worker, allowed to call 127.0.0.1; the suite's shared worker (which is not) pauses."""
    with other_workers_paused(WORKER_NAME):
        worker = CeleryWorker(
            broker_url=redis_server.url, name=WORKER_NAME, environment={"NEENA_HTTP_ALLOWLIST": "127.0.0.1"}
        )
        try:
            yield worker
        finally:
            worker.stop()


def _post_flow(owner, url):
    return make_flow(owner, [step(0, "HTTP Request", method="POST", url=url, body={"refund": 20})], [])


def _settled(api, flow_run_id, statuses):
    def check():
        body = api.get(f"/api/v1/flow_runs/?id={flow_run_id}").json()
        return body if body["status"] in statuses else None

    return wait_for(check, timeout=60, message=f"run {flow_run_id} to reach {statuses}")


def test_an_approved_post_answered_with_a_lone_surrogate_is_called_once_and_fails(
    api, owner, organization, service, http_worker
):
    flow_request = make_request(owner, "Post the refund.")
    created = api.post(
        f"/api/v1/flows/execute?flow_id={_post_flow(owner, service.url).id}&flow_request_id={flow_request.id}"
    )
    assert created.status_code == 200, created.content
    parked = _settled(api, created.json()["id"], ("awaiting_approval", "failed", "completed"))
    assert parked["status"] == "awaiting_approval", parked
    assert api.put(f"/api/v1/flow_runs/approve?flow_run_id={parked['id']}").status_code == 200

    run = _settled(api, parked["id"], ("failed", "completed", "cancelled"))

    assert service.calls == 1
    assert run["status"] == "failed"
    (task_run,) = run["task_runs"]
    assert task_run["status"] == "failed"
    assert "could not be stored" in task_run["error"]
    assert "result.body.x" in task_run["error"]
    assert task_run["result"]["body"] == {"x": "\ufffd", "ok": "fine"}  # the sanitised copy is kept
    assert "could not be stored" in run["status_reason"]

    # Whatever the sweeper finds later (even a lease that looks expired), the call is not made again.
    TaskRun.objects.filter(id=task_run["id"]).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    runs_sweep(now=timezone.now() + timedelta(seconds=600))
    time.sleep(2)  # time for a job the sweep might have queued to reach the worker
    assert service.calls == 1
    assert TaskRun.objects.get(id=task_run["id"]).status == TaskRun.Status.FAILED
    assert api.get("/api/v1/flow_runs/all").status_code == 200


@override_settings(NEENA_HTTP_ALLOWLIST=["127.0.0.1"])
def test_a_completion_the_database_refuses_fails_the_step_once_and_the_sweeper_does_not_call_again(
    owner, organization, monkeypatch
):
    fake = CountingService(answer=b'{"x": "fine"}')
    fake.server = serve(fake.handle)
    try:
        set_policy(organization, Organization.ApprovalPolicy.NEVER)
        monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps, countdown=None: None)
        flow_run = flow_execute(user=owner, flow=_post_flow(owner, fake.url), flow_request=make_request(owner))
        task_run = TaskRun.objects.get(flow_run=flow_run)
        refusing = step_ends.step_move

        def step_move(task_run, from_status, **changes):
            if changes.get("status") == TaskRun.Status.COMPLETED:
                raise DataError("unsupported Unicode escape sequence")  # what PostgreSQL says of \u0000 in jsonb
            return refusing(task_run, from_status, **changes)

        monkeypatch.setattr(step_ends, "step_move", step_move)

        task_run_execute(task_run_id=task_run.id)

        task_run.refresh_from_db()
        assert fake.calls == 1
        assert task_run.status == TaskRun.Status.FAILED
        assert task_run.error.startswith("The result could not be stored: DataError: unsupported Unicode escape")
        assert task_run.lease_expires_at is None
        flow_run.refresh_from_db()
        assert flow_run.status == FlowRun.Status.FAILED

        runs_sweep(now=timezone.now() + timedelta(seconds=600))
        task_run_execute(task_run_id=task_run.id)  # a redelivered message
        assert fake.calls == 1
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def test_a_side_effect_step_whose_worker_died_during_the_call_is_failed_by_the_sweeper_not_called_again(
    owner, organization, monkeypatch
):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    sent: list[ReadyStep] = []
    monkeypatch.setattr("apps.runs.services.control.send_steps", sent.extend)
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps, countdown=None: None)  # no worker gets the step
    flow_run = flow_execute(
        user=owner, flow=_post_flow(owner, "http://127.0.0.1:9/orders"), flow_request=make_request(owner)
    )
    # The worker said it was calling the service (in progress, with a lease), then died.
    TaskRun.objects.filter(flow_run=flow_run).update(
        status=TaskRun.Status.IN_PROGRESS, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    report = runs_sweep()

    task_run = TaskRun.objects.get(flow_run=flow_run)
    assert sent == []
    assert report.requeued_dead == 0
    assert report.failed_dead == 1
    assert task_run.status == TaskRun.Status.FAILED
    assert "may have happened" in task_run.error
    flow_run.refresh_from_db()
    assert flow_run.status == FlowRun.Status.FAILED


def test_a_read_step_whose_worker_died_is_still_queued_again(owner, organization, monkeypatch):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    sent: list[ReadyStep] = []
    monkeypatch.setattr("apps.runs.services.control.send_steps", sent.extend)
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps, countdown=None: None)  # no worker gets the step
    flow = make_flow(owner, [step(0, "HTTP GET Request", url="http://127.0.0.1:9/orders")], [])
    flow_run = flow_execute(user=owner, flow=flow, flow_request=make_request(owner))
    TaskRun.objects.filter(flow_run=flow_run).update(
        status=TaskRun.Status.IN_PROGRESS, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    report = runs_sweep()

    assert report.requeued_dead == 1
    assert [ready.task_run_id for ready in sent] == [TaskRun.objects.get(flow_run=flow_run).id]
    assert TaskRun.objects.get(flow_run=flow_run).status == TaskRun.Status.PENDING
