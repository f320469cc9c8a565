"""Inbound webhook benchmark: how fast signed events are acknowledged, and that none acknowledged is lost.

    python bench/webhooks.py [--rate 200] [--duration 10] [--clients 4] [--web-workers 4] [--json PATH] [--check]

Runs gunicorn (``gunicorn.conf.py``, bound to 127.0.0.1 on a free port) on a throwaway SQLite database prepared with
``migrate``, with an embedded Redis as the broker. No Celery worker runs: what is measured is the acknowledgement
(verify the signature, store the trigger run, queue its job, answer 202), not the processing. One active operation
of the generic ``webhook`` integration receives events signed with its secret as Standard Webhooks says
(``webhook-signature``), each with its own ``webhook-id``, sent open-loop at ``--rate`` requests per second for
``--duration`` seconds by ``--clients`` threads (httpx, to 127.0.0.1 only; the count and the time are bounded).

Printed: acknowledgement throughput, latency p50 / p99 / max (from each request's scheduled send time, so a server
that falls behind is not flattered), answers other than 202, and lost events: acknowledged deliveries with no stored
trigger run, and stored ones with no queued job. The target is p99 under 50 ms with no lost event at 200 per second.
Exit status: 2 when an event was lost or refused; 1 with ``--check`` when the latency target is missed; else 0.
"""

import argparse
import json
import logging
import os
import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis
from standardwebhooks.webhooks import Webhook

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run_all import (  # noqa: E402 - needs the project root on sys.path first
    BENCH_SETTINGS,
    Figure,
    gunicorn_server,
    setup_django,
    throwaway_database,
    write_figures,
)
from neena.embedded_redis import EmbeddedRedis  # noqa: E402

TARGET_P99_MS = 50.0
# Requests before the measurement, so each gunicorn worker has its database and broker connections open.
WARMUP_REQUESTS = 40
REQUEST_TIMEOUT_SECONDS = 5.0
# Hard bounds whatever the arguments say: the benchmark never sends more than this, nor for longer.
MAX_REQUESTS = 20_000
MAX_DURATION_SECONDS = 60.0


def log(message: str) -> None:
    print(f"bench/webhooks: {message}", file=sys.stderr, flush=True)


@dataclass
class Sample:
    delivery_id: str
    status: int
    latency_ms: float


@dataclass
class Load:
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def signed_event(secret: str, sequence: int) -> tuple[bytes, dict[str, str], str]:
    """A generic webhook event, its signature headers and its delivery id."""
    delivery_id = f"bench-{uuid.uuid4()}"
    body = json.dumps(
        {"entity_id": f"order-{sequence}", "event_type": "order.created", "text": f"Order {sequence} was placed."}
    ).encode()
    sent_at = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": delivery_id,
        "webhook-timestamp": str(sent_at),
        "webhook-signature": Webhook(secret).sign(delivery_id, datetime.fromtimestamp(sent_at, tz=UTC), body),
    }
    return body, headers, delivery_id


def send_at_rate(url: str, secret: str, *, rate: float, duration: float, clients: int, first: int) -> Load:
    """Open loop: request ``i`` is due at ``start + i / rate``; ``clients`` threads take the due requests in turn.

    Latency counts from the due time, so a queue building up in the server (or in the clients) shows in it.
    """
    count = min(int(rate * duration), MAX_REQUESTS)
    load = Load()
    next_index = iter(range(count))
    index_lock = threading.Lock()
    start = time.monotonic() + 0.2
    deadline = start + min(duration, MAX_DURATION_SECONDS) + 30.0

    def client() -> None:
        with httpx.Client(timeout=REQUEST_TIMEOUT_SECONDS) as http:
            while True:
                with index_lock:
                    index = next(next_index, None)
                if index is None or time.monotonic() > deadline:
                    return
                body, headers, delivery_id = signed_event(secret, first + index)
                due = start + index / rate
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                try:
                    status = http.post(url, content=body, headers=headers).status_code
                except httpx.HTTPError as error:
                    with load.lock:
                        load.errors.append(f"{type(error).__name__}: {error}")
                    continue
                latency_ms = (time.monotonic() - due) * 1000
                with load.lock:
                    load.samples.append(Sample(delivery_id, status, latency_ms))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + 5)
    load.elapsed_seconds = time.monotonic() - start
    return load


def busy_cpu_fraction(seconds: float = 1.0) -> float | None:
    """How busy the machine's CPUs are with other work right now (from /proc/stat over ``seconds``); None where
    /proc/stat does not exist."""

    def sample() -> tuple[int, int]:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    try:
        total_before, idle_before = sample()
        time.sleep(seconds)
        total_after, idle_after = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total_after - total_before
    return 1.0 - (idle_after - idle_before) / total if total else None


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] if ordered else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second (default 200)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load (default 10)")
    parser.add_argument("--clients", type=int, default=4, help="client threads (default 4)")
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--json", help="also write the figures as JSON to this path")
    parser.add_argument("--check", action="store_true", help="exit with status 1 when the latency target is missed")
    arguments = parser.parse_args(argv)
    duration = min(arguments.duration, MAX_DURATION_SECONDS)
    # The figure is for the embedded default, SQLite, whatever DATABASE_URL the shell exports.
    os.environ.pop("DATABASE_URL", None)

    redis_server = EmbeddedRedis()
    try:
        with throwaway_database("webhooks") as database_url:
            broker = {"REDIS_URL": redis_server.url, "CELERY_BROKER_URL": redis_server.url}
            setup_django(database_url, **broker)
            # Django's logging configuration logs every httpx request at INFO: noise, and client time.
            logging.getLogger("httpx").setLevel(logging.WARNING)
            from apps.accounts.services import user_create
            from apps.integrations.models import WebhookTriggerDefinition
            from apps.webhooks.models import TriggerRun
            from apps.webhooks.services.operations import trigger_operation_create

            owner = user_create(email="bench@example.com", full_name="Bench")
            operation, secret = trigger_operation_create(
                user=owner,
                name="Bench orders",
                webhook_trigger_definition=WebhookTriggerDefinition.objects.get(
                    trigger_name="Generic Event Received"
                ).id,
                template_body="Summarize <{text}> about <{entity_id}>.",
                status="active",
            )
            environment = {
                **os.environ,
                "DJANGO_SETTINGS_MODULE": BENCH_SETTINGS,
                "DATABASE_URL": database_url,
                **broker,
            }
            with gunicorn_server(environment, workers=arguments.web_workers) as base_url:
                url = f"{base_url}/api/v1/webhooks/{operation.id}/"
                busy_before = busy_cpu_fraction()
                log(f"gunicorn ({arguments.web_workers} workers) on {base_url}; warming up")
                warmup = send_at_rate(url, secret, rate=100, duration=WARMUP_REQUESTS / 100, clients=2, first=0)
                log(
                    f"sending {int(arguments.rate * duration)} signed events at {arguments.rate:g}/s for {duration:g} s"
                )
                load = send_at_rate(
                    url, secret, rate=arguments.rate, duration=duration, clients=arguments.clients, first=10**6
                )

            accepted = {sample.delivery_id for sample in [*warmup.samples, *load.samples] if sample.status == 202}
            stored = set(
                TriggerRun.objects.filter(operation=operation).values_list("delivery_id", flat=True).iterator()
            )
            queued = redis.Redis.from_url(redis_server.url).llen("celery")
    finally:
        redis_server.stop()

    latencies = [sample.latency_ms for sample in load.samples if sample.status == 202]
    others: dict[int, int] = {}
    for sample in load.samples:
        if sample.status != 202:
            others[sample.status] = others.get(sample.status, 0) + 1
    lost = len(accepted - stored)
    acknowledged = len(latencies)
    throughput = acknowledged / load.elapsed_seconds if load.elapsed_seconds else 0.0
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)

    busy = "unknown" if busy_before is None else f"{busy_before:.0%}"
    print(
        f"machine: {os.cpu_count()} CPUs, {busy} busy with other work just before the load (it skews every figure), "
        f"load average {', '.join(f'{value:.2f}' for value in os.getloadavg())}"
    )
    print(f"sent {len(load.samples) + len(load.errors)} signed events at {arguments.rate:g}/s for {duration:g} s")
    print(f"acknowledged (202): {acknowledged}, throughput {throughput:.1f}/s over {load.elapsed_seconds:.1f} s")
    print(
        f"latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies, default=float('nan')):.1f} ms, "
        f"mean {statistics.fmean(latencies) if latencies else float('nan'):.1f} ms"
    )
    print(f"other answers: {others or 'none'}; client errors: {len(load.errors)}")
    print(f"stored trigger runs: {len(stored)} for {len(accepted)} acknowledged (warm-up included); lost: {lost}")
    print(f"jobs queued on the broker: {queued} (one per stored trigger run: {queued == len(stored)})")
    intact = lost == 0 and not others and not load.errors and queued == len(stored)
    met = intact and p99 < TARGET_P99_MS
    print(f"target p99 < {TARGET_P99_MS:g} ms and no lost event: {'met' if met else 'NOT MET'}")
    for error in load.errors[:5]:
        log(f"client error: {error}")
    write_figures(
        [
            Figure(
                key="webhooks.acknowledge",
                label=f"webhook acknowledgement at {arguments.rate:g}/s",
                value=throughput,
                unit="requests/s",
                baseline_label="offered rate",
                baseline=arguments.rate,
                lower_is_better=False,
                database="sqlite",
                extra={"p50_ms": p50, "p99_ms": p99},
                note=f"lost {lost}",
            )
        ],
        arguments.json,
    )
    # A lost or refused event is a failure whatever the options; a slow run only with --check (latency depends on
    # what else the machine is doing).
    if not intact:
        return 2
    return 1 if arguments.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
