"""API benchmark: requests per second and latency of three endpoints, against a DRF hello-world served beside them.

    python bench/api.py [--json PATH]     # SQLite, or PostgreSQL when DATABASE_URL points to a server

The server is the production one, gunicorn with ``gunicorn.conf.py`` (NEENA_WEB_WORKERS sync workers on a free port
of 127.0.0.1), on a throwaway database holding 100 runs of 5 task runs each and a flow of 20 steps. Its URLconf is
``bench.hello_urls``: every product URL plus ``/bench/hello``, the ceiling the figures are divided by (it exists in
no other URLconf). A few client threads (httpx, only 127.0.0.1) load one endpoint at a time, for a bounded time and
number of requests; the endpoints take turns, round after round, so that load from elsewhere on the machine spreads
over all of them, and every figure is a ratio to the hello-world measured in the same rounds.

Endpoints: GET /api/v1/flow_runs/all?limit=100, GET /api/v1/flows/?id= (20 steps), POST /api/v1/flow_requests/.
"""

import argparse
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run_all import (  # noqa: E402 - needs the project root on sys.path first
    BENCH_SETTINGS,
    Figure,
    database_vendor,
    gunicorn_server,
    setup_django,
    throwaway_database,
    write_figures,
)

WEB_WORKERS = 3
CLIENT_THREADS = 4
ROUNDS = 3
# Each endpoint, each round: this long, or this many requests, whichever comes first.
ROUND_SECONDS = 3.0
ROUND_MAX_REQUESTS = 3000
WARM_UP_REQUESTS = 30
REQUEST_TIMEOUT_SECONDS = 10.0
RUNS = 100
STEPS_PER_RUN = 5
FLOW_STEPS = 20


def log(message: str) -> None:
    print(f"bench/api: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str
    method: str
    path: str
    body: dict[str, Any] | None = None
    authenticated: bool = True


@dataclass
class Load:
    """What one endpoint answered over every round: latencies of successful requests, failures, time spent."""

    latencies: list[float] = field(default_factory=list)
    failures: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile_ms(self, percent: int) -> float:
        if len(self.latencies) < 2:
            return float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[percent - 1] * 1000


def seed(owner_email: str) -> tuple[str, str]:
    """The data the endpoints read: 100 runs of a 5-step flow, each with 5 completed task runs, and a 20-step flow.

    Returns (an API key with every scope, the 20-step flow's id). Rows are written in bulk: the figures are about
    reading them.
    """
    from django.utils import timezone

    from apps.accounts.models import Organization
    from apps.accounts.services import api_key_create, user_create
    from apps.flows.services import DependencyDraft, TaskOperationDraft, flow_create, flow_request_create
    from apps.integrations.models import TaskDefinition
    from apps.runs.models import FlowRun, TaskRun

    owner = user_create(email=owner_email, full_name="Bench Owner")
    organization = Organization.objects.get(memberships__user=owner, is_personal=True)
    format_text = TaskDefinition.objects.get(task_name="Format Text", deleted_at__isnull=True)

    def chain(steps: int) -> Any:
        return flow_create(
            user=owner,
            name=f"Bench flow of {steps} steps",
            task_operations=[
                TaskOperationDraft(
                    index=index,
                    name=f"Step {index}",
                    task_definition=format_text.id,
                    instruction=f"Write line {index} of the reply.",
                    parameters={"template": f"Line {index} for {{customer}}", "values": {"customer": "Ann"}},
                )
                for index in range(steps)
            ],
            dependencies=[DependencyDraft(index, index + 1) for index in range(steps - 1)],
        )

    run_flow = chain(STEPS_PER_RUN)
    big_flow = chain(FLOW_STEPS)
    operations = list(run_flow.task_operations.order_by("index"))
    now = timezone.now()
    runs = FlowRun.objects.bulk_create(
        FlowRun(
            organization=organization,
            flow=run_flow,
            flow_version=run_flow.latest_version,
            flow_request=flow_request_create(
                user=owner,
                request_instructions=f"Summarise ticket {number} and draft a reply.",
                request_metadata=[{"ticket_id": str(number)}],
            ),
            status=FlowRun.Status.COMPLETED,
            triggered_time=now,
            triggered_by=owner_email,
            end_time=now,
            created_by_email=owner_email,
            modified_by_email=owner_email,
        )
        for number in range(RUNS)
    )
    TaskRun.objects.bulk_create(
        TaskRun(
            flow_run=run,
            task_operation=operation,
            task_operation_index=operation.index,
            status=TaskRun.Status.COMPLETED,
            start_time=now,
            end_time=now,
            task_prep_answer={
                "parameters": [
                    {"name": "template", "value": f"Line {operation.index}", "explanation": "binding"},
                    {"name": "values", "value": {"customer": "Ann"}, "explanation": "binding"},
                ]
            },
            result={"text": f"Line {operation.index} for Ann"},
        )
        for run in runs
        for operation in operations
    )
    return api_key_create(user=owner, scopes=["read", "write", "approve"]), str(big_flow.id)


def send_load(base_url: str, endpoint: Endpoint, token: str, into: Load, *, seconds: float, max_requests: int) -> None:
    """CLIENT_THREADS threads send requests to ``endpoint`` until the time or the request budget runs out; the
    answers are added to ``into``."""
    headers = {"Authorization": f"Bearer {token}"} if endpoint.authenticated else {}
    deadline = time.monotonic() + seconds
    budget = iter(range(max_requests))
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=base_url, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS) as http:
            while time.monotonic() < deadline:
                with lock:
                    if next(budget, None) is None:
                        return
                started = time.perf_counter()
                try:
                    response = http.request(endpoint.method, endpoint.path, json=endpoint.body)
                    status = response.status_code
                except httpx.HTTPError:
                    status = 0
                elapsed = time.perf_counter() - started
                with lock:
                    if status == 200:
                        into.latencies.append(elapsed)
                    else:
                        into.failures[status] = into.failures.get(status, 0) + 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(CLIENT_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + REQUEST_TIMEOUT_SECONDS + 5)
    into.seconds += time.perf_counter() - started


def measure(base_url: str, token: str, flow_id: str, database: str) -> list[Figure]:
    hello = Endpoint("api.hello", "DRF hello-world", "GET", "/bench/hello", authenticated=False)
    endpoints = [
        Endpoint(
            "api.flow_runs_all",
            f"GET /api/v1/flow_runs/all?limit=100 ({RUNS} runs x {STEPS_PER_RUN} task runs)",
            "GET",
            "/api/v1/flow_runs/all?limit=100",
        ),
        Endpoint(
            "api.flow_detail", f"GET /api/v1/flows/?id= ({FLOW_STEPS} steps)", "GET", f"/api/v1/flows/?id={flow_id}"
        ),
        Endpoint(
            "api.flow_request_create",
            "POST /api/v1/flow_requests/",
            "POST",
            "/api/v1/flow_requests/",
            body={"request_instructions": "Summarise ticket 42 and tell ops@example.com.", "request_name": "Bench"},
        ),
    ]
    everything = [hello, *endpoints]
    log(f"warming up {WEB_WORKERS} gunicorn workers")
    for endpoint in everything:
        send_load(base_url, endpoint, token, Load(), seconds=ROUND_SECONDS, max_requests=WARM_UP_REQUESTS)
    loads = {endpoint.key: Load() for endpoint in everything}
    for number in range(ROUNDS):
        log(f"round {number + 1} of {ROUNDS}")
        # Each round starts with a different endpoint.
        for endpoint in everything[number % len(everything) :] + everything[: number % len(everything)]:
            send_load(
                base_url,
                endpoint,
                token,
                loads[endpoint.key],
                seconds=ROUND_SECONDS,
                max_requests=ROUND_MAX_REQUESTS,
            )

    ceiling = loads[hello.key]

    def figure(endpoint: Endpoint) -> Figure:
        measured = loads[endpoint.key]
        failures = ", ".join(
            f"{count} x {status or 'no answer'}" for status, count in sorted(measured.failures.items())
        )
        return Figure(
            key=endpoint.key,
            label=f"{endpoint.label}",
            value=measured.rate,
            unit="req/s",
            baseline_label=(
                f"{hello.label} (p50 {ceiling.percentile_ms(50):.1f} ms, p99 {ceiling.percentile_ms(99):.1f} ms)"
            ),
            baseline=ceiling.rate,
            lower_is_better=False,
            database=database,
            extra={"p50_ms": measured.percentile_ms(50), "p99_ms": measured.percentile_ms(99)},
            note=f"{len(measured.latencies)} requests" + (f"; failed: {failures}" if failures else ""),
        )

    return [figure(endpoint) for endpoint in endpoints]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="also write the figures as JSON to this file (for bench/run_all.py)")
    arguments = parser.parse_args(argv)

    database = database_vendor(os.environ.get("DATABASE_URL"))
    with throwaway_database("api") as database_url:
        setup_django(database_url)
        from django.db import connections

        token, flow_id = seed("bench-owner@example.com")
        connections.close_all()
        environment = {
            "DJANGO_SETTINGS_MODULE": BENCH_SETTINGS,
            "DATABASE_URL": database_url,
            "NEENA_BENCH_ROOT_URLCONF": "bench.hello_urls",
        }
        log(f"on {database}, seeded {RUNS} runs; gunicorn starting")
        with gunicorn_server(environment, workers=WEB_WORKERS, ready_path="/bench/hello") as base_url:
            figures = measure(base_url, token, flow_id, database)
    write_figures(figures, arguments.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
