"""The request id: taken from X-Request-ID when sane, else made; echoed; carried in the headers of every job the
request queues; bound by the task base (or made fresh) when the job runs; and found in a real worker's log lines
with the run and step ids, so one request's story can be grepped."""

import json
import re

import pytest
import redis
import structlog
from rest_framework.test import APIClient

from apps.core.request_id import TASK_HEADER, request_id_bound, request_id_current, request_id_publish
from apps.core.tasks import NeenaTask
from neena.celery import app
from tests.runs.flows import make_flow, make_request, step
from tests.workers import wait_for

HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize("given", ["abc-123", "trace.ID_42", "a" * 200])
def test_a_sane_request_id_is_kept_and_echoed(given):
    response = APIClient().get("/healthz", HTTP_X_REQUEST_ID=given)
    assert response["X-Request-ID"] == given


@pytest.mark.parametrize("given", [None, "", "a" * 201, "has space", "new\nline", 'quote"', "ünïcode"])
def test_a_missing_or_unacceptable_request_id_is_replaced_by_a_new_one(given):
    headers = {} if given is None else {"HTTP_X_REQUEST_ID": given}
    first = APIClient().get("/healthz", **headers)["X-Request-ID"]
    second = APIClient().get("/healthz", **headers)["X-Request-ID"]
    assert HEX_ID.fullmatch(first) and HEX_ID.fullmatch(second)
    assert first != second


@pytest.mark.django_db
def test_even_a_refused_request_carries_its_id(api):
    response = APIClient().get("/api/v1/flow_runs/all", HTTP_X_REQUEST_ID="refused-1")
    assert response.status_code == 401
    assert response["X-Request-ID"] == "refused-1"
    assert APIClient().get("/nowhere", HTTP_X_REQUEST_ID="lost-1")["X-Request-ID"] == "lost-1"


def test_the_id_ends_with_the_request():
    APIClient().get("/healthz", HTTP_X_REQUEST_ID="over-1")
    assert request_id_current() is None
    assert "request_id" not in structlog.contextvars.get_contextvars()


def test_the_publish_hook_puts_the_current_id_in_the_message_headers():
    headers = {}
    request_id_publish(headers=headers)
    assert headers == {}  # no current request: the worker makes a fresh id
    with request_id_bound("req-7"):
        request_id_publish(headers=headers)
    assert headers == {TASK_HEADER: "req-7"}


def test_a_published_job_carries_the_id_to_the_broker(redis_url):
    with request_id_bound("req-on-the-wire"):
        app.send_task("runs.sweep", queue="no-worker-listens")
    message = json.loads(redis.Redis.from_url(redis_url).lpop("no-worker-listens"))
    assert message["headers"][TASK_HEADER] == "req-on-the-wire"


class _Recorder(NeenaTask):
    name = "tests.record_context"
    seen: list = []

    def run(self, *args):
        self.seen.append(dict(structlog.contextvars.get_contextvars()))


def _run_with_request(**request):
    task = app.tasks.get(_Recorder.name) or app.register_task(_Recorder())
    task.seen.clear()
    task.push_request(**request)
    try:
        task("some-id")
    finally:
        task.pop_request()
    return task.seen[-1]


def test_the_task_base_binds_the_id_from_the_message():
    context = _run_with_request(id="task-1", **{TASK_HEADER: "req-9"})
    assert context == {"request_id": "req-9", "task": "tests.record_context", "task_id": "task-1"}
    assert "request_id" not in structlog.contextvars.get_contextvars()  # unbound when the job ends


def test_a_job_without_an_id_gets_a_fresh_one_as_beats_jobs_do():
    first = _run_with_request(id="task-2")["request_id"]
    second = _run_with_request(id="task-3")["request_id"]
    assert HEX_ID.fullmatch(first) and first != second


@pytest.mark.django_db(transaction=True)
def test_one_requests_story_is_in_the_workers_log_lines_with_run_and_step_ids(api, owner, celery_worker):
    flow = make_flow(owner, [step(0, "Format Text", template="one"), step(1, "Format Text", template="two")], [(0, 1)])
    flow_request = make_request(owner)

    response = api.post(
        f"/api/v1/flows/execute?flow_id={flow.id}&flow_request_id={flow_request.id}", HTTP_X_REQUEST_ID="story-42"
    )

    assert response.status_code == 200, response.content
    run_id = response.json()["id"]
    step_ids = [task_run["id"] for task_run in response.json()["task_runs"]]

    def story():
        lines = [line for line in celery_worker.output().splitlines() if "request_id=story-42" in line]
        ended = [line for line in lines if "completed" in line and "step_id=" in line]
        return lines if len(ended) == 2 else None

    lines = wait_for(story, timeout=60, message="the worker's log lines of request story-42")
    for step_id in step_ids:
        assert any(f"run_id={run_id}" in line and f"step_id={step_id}" in line for line in lines), lines
