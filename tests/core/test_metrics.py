"""``GET /metrics``: the token, both spellings of the route, and every metric changing after its event: HTTP
requests, steps run by the engine (in this process), webhook deliveries, planning, and the scrape-time gauges (runs
by status, runs awaiting approval, queue depths). Multiprocess mode: values recorded by other processes, including a
real prefork Celery worker, are summed from PROMETHEUS_MULTIPROC_DIR."""

import os
import subprocess
import sys
import textwrap

import pytest
import redis
from django.test import override_settings
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from apps.accounts.models import Organization
from apps.runs.models import FlowRun
from apps.runs.services.run_creation import flow_execute
from apps.runs.services.step_execution import task_runs_execute
from tests.runs.flows import make_flow, make_request, set_policy, step
from tests.webhooks.signing import create_operation, deliver, zendesk_ticket_created
from tests.workers import ROOT, CeleryWorker, wait_for

TOKEN = "metrics-token-0123456789"


def sample(name, **labels):
    """This process's value of a recorded series (0 when it was never recorded)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scraped(client=None, **headers):
    """The series of one scrape of /metrics, as {(name, sorted label items): value}."""
    response = (client or APIClient()).get("/metrics", **headers)
    assert response.status_code == 200, response.content
    return {
        (item.name, tuple(sorted(item.labels.items()))): item.value
        for family in text_string_to_metric_families(response.content.decode())
        for item in family.samples
    }


# --- The endpoint -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_open_without_a_token_on_both_spellings_without_redirect():
    client = APIClient()
    for path in ("/metrics", "/metrics/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response["Content-Type"].startswith("text/plain")
        assert b"neena_flow_runs" in response.content


@pytest.mark.django_db
@override_settings(NEENA_METRICS_TOKEN=TOKEN)
def test_the_token_is_required_when_configured():
    client = APIClient()
    for path in ("/metrics", "/metrics/"):
        for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": TOKEN}):
            response = client.get(path, **headers)
            assert response.status_code == 401, (path, headers)
            assert response.json() == {"detail": "Invalid or missing metrics token.", "code": "not_authenticated"}
            assert response["WWW-Authenticate"].startswith("Bearer")
        assert client.get(path, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


@pytest.mark.django_db
def test_only_get_and_head():
    assert APIClient().post("/metrics").status_code == 405


# --- HTTP requests ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_requests_are_timed_by_url_pattern_name_and_status_never_by_path(api):
    labels = {"view": "healthz", "method": "GET", "status": "200"}
    before = sample("neena_http_request_duration_seconds_count", **labels)
    unmatched = {"view": "unmatched", "method": "GET", "status": "404"}
    before_unmatched = sample("neena_http_request_duration_seconds_count", **unmatched)
    before_runs = sample("neena_http_request_duration_seconds_count", view="flow-runs-all", method="GET", status="200")

    client = APIClient()
    client.get("/healthz")
    client.get("/no/such/path/123")
    client.get("/no/such/path/456")
    api.get("/api/v1/flow_runs/all")
    client.generic("BREW", "/healthz")

    assert sample("neena_http_request_duration_seconds_count", **labels) == before + 1
    assert sample("neena_http_request_duration_seconds_count", **unmatched) == before_unmatched + 2
    runs = sample("neena_http_request_duration_seconds_count", view="flow-runs-all", method="GET", status="200")
    assert runs == before_runs + 1
    # An unusual method is counted as "other" (healthz answers only GET and HEAD, so 405).
    assert sample("neena_http_request_duration_seconds_count", view="healthz", method="other", status="405") >= 1
    series = scraped()
    assert not any("/no/such" in str(labels) for _, labels in series)
    # A scrape does not time itself.
    assert not any(("view", "metrics") in labels for _, labels in series)


# --- Steps, run states, approvals -------------------------------------------------------------------------------


@pytest.fixture
def in_process(owner, organization, monkeypatch):
    """Steps run in this process (as ``tests/runs/test_engine_query_counts.py`` runs them), the broker left out."""
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps, **options: None)
    monkeypatch.setattr("apps.runs.services.step_execution.send_steps", lambda steps, **options: None)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process")
def test_steps_started_completed_failed_and_their_durations(owner):
    format_text = {"integration": "core", "task": "Format Text"}
    before = {
        name: sample(name, **format_text)
        for name in ("neena_steps_started_total", "neena_steps_completed_total", "neena_steps_failed_total")
    }
    before_completed_durations = sample("neena_step_duration_seconds_count", status="completed", **format_text)
    before_failed_durations = sample("neena_step_duration_seconds_count", status="failed", **format_text)
    before_runs = scraped()

    chain = make_flow(owner, [step(0, "Format Text", template="a"), step(1, "Format Text", template="b")], [(0, 1)])
    completed = flow_execute(user=owner, flow=chain, flow_request=make_request(owner))
    task_runs_execute(task_run_ids=[completed.task_runs.get(task_operation_index=0).id], time_limit_seconds=600)
    broken = make_flow(owner, [step(0, "Format Text", template="{{ request.metadata.missing }}")], [])
    failed = flow_execute(user=owner, flow=broken, flow_request=make_request(owner, metadata={"present": 1}))
    task_runs_execute(task_run_ids=[failed.task_runs.get().id], time_limit_seconds=600)

    completed.refresh_from_db()
    failed.refresh_from_db()
    assert (completed.status, failed.status) == (FlowRun.Status.COMPLETED, FlowRun.Status.FAILED)
    assert sample("neena_steps_started_total", **format_text) == before["neena_steps_started_total"] + 3
    assert sample("neena_steps_completed_total", **format_text) == before["neena_steps_completed_total"] + 2
    assert sample("neena_steps_failed_total", **format_text) == before["neena_steps_failed_total"] + 1
    durations = sample("neena_step_duration_seconds_count", status="completed", **format_text)
    assert durations == before_completed_durations + 2
    assert sample("neena_step_duration_seconds_count", status="failed", **format_text) == before_failed_durations + 1

    after_runs = scraped()
    for status, added in (("completed", 1), ("failed", 1), ("pending", 0)):
        key = ("neena_flow_runs", (("status", status),))
        assert after_runs[key] == before_runs[key] + added


@pytest.mark.django_db
def test_runs_awaiting_approval_are_read_at_scrape_time(owner, organization):
    assert scraped()[("neena_runs_awaiting_approval", ())] == 0
    assert scraped()[("neena_runs_awaiting_approval_oldest_seconds", ())] == 0
    set_policy(organization, Organization.ApprovalPolicy.ALWAYS)
    flow = make_flow(owner, [step(0, "Format Text", template="a")], [])
    flow_execute(user=owner, flow=flow, flow_request=make_request(owner))
    flow_execute(user=owner, flow=flow, flow_request=make_request(owner))

    series = scraped()
    assert series[("neena_runs_awaiting_approval", ())] == 2
    assert series[("neena_flow_runs", (("status", "awaiting_approval"),))] == 2
    assert series[("neena_runs_awaiting_approval_oldest_seconds", ())] >= 0


@pytest.mark.django_db
def test_the_scrape_reads_run_states_in_two_queries_and_nothing_per_run(owner, organization, django_assert_num_queries):
    set_policy(organization, Organization.ApprovalPolicy.ALWAYS)
    flow = make_flow(owner, [step(0, "Format Text", template="a")], [])
    for _ in range(3):
        flow_execute(user=owner, flow=flow, flow_request=make_request(owner))
    with django_assert_num_queries(2):
        scraped()


# --- Queue depths -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_queue_depth_is_each_queues_length_in_the_broker(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.rpush("celery", "a", "b", "c")
    client.rpush("celery\x06\x163", "d")  # kombu's key for priority 3 of the same queue
    client.rpush("integrations", "e")

    series = scraped()

    assert series[("neena_celery_queue_depth", (("queue", "celery"),))] == 4
    assert series[("neena_celery_queue_depth", (("queue", "integrations"),))] == 1


@pytest.mark.django_db
@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0", NEENA_BROKER_PING_TIMEOUT=0.2)
def test_a_broker_that_does_not_answer_leaves_only_the_queue_depths_out():
    series = scraped()
    assert not any(name == "neena_celery_queue_depth" for name, _ in series)
    assert ("neena_flow_runs", (("status", "pending"),)) in series


# --- Webhook deliveries and planning ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_webhook_deliveries_are_counted_accepted_and_refused_by_reason(api, monkeypatch):
    monkeypatch.setattr("apps.webhooks.services.receiving.send_trigger_run", lambda trigger_run_id: None)
    operation = create_operation(api)
    reasons = {
        ("accepted", "new"): 1,
        ("accepted", "duplicate"): 1,
        ("refused", "signature_invalid"): 1,
        ("refused", "signature_missing"): 1,
        ("refused", "not_found"): 1,
        ("refused", "request_too_large"): 1,
    }
    before = {key: sample("neena_webhook_deliveries_total", outcome=key[0], reason=key[1]) for key in reasons}
    client = APIClient()
    payload = zendesk_ticket_created()

    assert deliver(client, operation, payload).status_code == 202
    repeated = deliver(client, operation, payload)
    assert repeated.status_code == 200
    assert deliver(client, operation, payload, secret="not-the-secret").status_code == 401
    assert deliver(client, operation, payload, headers={}).status_code == 401
    assert deliver(client, {**operation, "id": "00000000-0000-0000-0000-000000000000"}, payload).status_code == 404
    with override_settings(NEENA_WEBHOOK_MAX_BODY_BYTES=10):
        assert deliver(client, operation, payload).status_code == 413

    for (outcome, reason), added in reasons.items():
        assert (
            sample("neena_webhook_deliveries_total", outcome=outcome, reason=reason) == before[(outcome, reason)] + 1
        ), (
            outcome,
            reason,
            added,
        )


@pytest.mark.django_db
def test_planning_latency_by_planner_and_outcome(api, owner):
    planned_before = sample("neena_planning_duration_seconds_count", planner="rules", outcome="planned")
    refused_before = sample("neena_planning_duration_seconds_count", planner="rules", outcome="refused")
    plannable = make_request(owner, "Get Zendesk ticket 123, summarize it, then add an internal note with the summary.")
    unplannable = make_request(owner, "Paint the fence blue.")

    assert api.get(f"/api/v1/flows/generate?flow_request_id={plannable.id}").status_code == 200
    assert api.get(f"/api/v1/flows/generate?flow_request_id={unplannable.id}").status_code == 422

    assert sample("neena_planning_duration_seconds_count", planner="rules", outcome="planned") == planned_before + 1
    assert sample("neena_planning_duration_seconds_count", planner="rules", outcome="refused") == refused_before + 1
    assert sample("neena_planning_duration_seconds_sum", planner="rules", outcome="planned") > 0


# --- Multiprocess mode ------------------------------------------------------------------------------------------


RECORD_IN_A_PROCESS = textwrap.dedent(
    """
    import django
    django.setup()
    from apps.core import metrics
    metrics.record_step_started(integration="core", task="Format Text")
    metrics.record_step_ended(integration="core", task="Format Text", status="completed", seconds=0.5)
    metrics.record_webhook_delivery(accepted=False, reason="signature_invalid")
    """
)

SCRAPE_IN_A_PROCESS = textwrap.dedent(
    """
    import django
    django.setup()
    from django.test import Client
    response = Client().get("/metrics")
    assert response.status_code == 200, response.content
    print(response.content.decode())
    """
)


def _python(code, directory):
    environment = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "DJANGO_SETTINGS_MODULE": "neena.settings.test",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60, check=True
    ).stdout


def _summed(directory):
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    return registry


def test_values_of_several_processes_are_summed_from_the_directory(tmp_path):
    _python(RECORD_IN_A_PROCESS, tmp_path)
    _python(RECORD_IN_A_PROCESS, tmp_path)

    registry = _summed(tmp_path)
    labels = {"integration": "core", "task": "Format Text"}
    assert registry.get_sample_value("neena_steps_started_total", labels) == 2
    assert registry.get_sample_value("neena_steps_completed_total", labels) == 2
    assert registry.get_sample_value("neena_step_duration_seconds_sum", {**labels, "status": "completed"}) == 1.0
    refused = {"outcome": "refused", "reason": "signature_invalid"}
    assert registry.get_sample_value("neena_webhook_deliveries_total", refused) == 2


def test_metrics_view_in_multiprocess_mode_answers_every_processes_sum(tmp_path):
    _python(RECORD_IN_A_PROCESS, tmp_path)
    _python(RECORD_IN_A_PROCESS, tmp_path)

    # The scraping process's database has no tables (this is not the test database): the run gauges are left out
    # with a warning, and the processes' counters are still answered.
    families = {
        item.name: item.value
        for family in text_string_to_metric_families(_python(SCRAPE_IN_A_PROCESS, tmp_path))
        for item in family.samples
        if item.labels.get("task") == "Format Text"
    }
    assert families["neena_steps_started_total"] == 2


@pytest.mark.django_db(transaction=True)
def test_a_prefork_celery_workers_steps_are_counted_in_the_shared_directory(tmp_path, owner, organization, redis_url):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    worker = CeleryWorker(broker_url=redis_url, name="metrics", environment={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    try:
        flow = make_flow(
            owner,
            [step(0, "Format Text", template="one"), step(1, "Format Text", template="two")],
            [(0, 1)],
        )
        flow_run = flow_execute(user=owner, flow=flow, flow_request=make_request(owner))
        wait_for(
            lambda: FlowRun.objects.get(id=flow_run.id).status == FlowRun.Status.COMPLETED,
            timeout=60,
            message="the run to complete: " + worker.output()[-2000:],
        )
    finally:
        worker.stop()

    labels = {"integration": "core", "task": "Format Text"}
    registry = _summed(tmp_path)
    assert registry.get_sample_value("neena_steps_completed_total", labels) == 2
    assert registry.get_sample_value("neena_step_duration_seconds_count", {**labels, "status": "completed"}) == 2
