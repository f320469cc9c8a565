"""Engine benchmark: what the run engine costs on top of Celery itself, and how DAG validation scales.

    python bench/engine.py [--json PATH]     # SQLite, or PostgreSQL when DATABASE_URL points to a server

Figures, each against a baseline measured in the same run (``bench/run_all.py`` prints them with their targets):

(a) sequential steps: a flow of 50 chained Format Text steps, from ``flow_execute`` until the run has ended, per step;
    baseline: a raw Celery chain of 50 no-op tasks, from ``apply_async`` until its last task has run, per hop.
(b) fan-out: 200 parallel Format Text steps joined by one step; baseline: a raw chord of 200 no-ops and a no-op body.
(c) throughput: 5-step flow runs completed per minute, all submitted at once; baseline: raw 5-task chains.
(d) DAG validation and topological sort (``apps.flows.dag.validate_dag``) for 100, 1,000 and 10,000 steps, against
    the 100-step time: the ratio per tenfold is 10x when it grows linearly.

Everything runs on a throwaway database (``manage.py migrate``d), an embedded Redis and one real Celery worker (two
prefork processes) that serves both the product's jobs and the baseline's (``--include bench.celery_baseline``),
with the product's default settings (steps run in place up to NEENA_INLINE_STEP_LIMIT). A chord needs a result
backend and Neena runs without one, so the fan-out figure gets a worker of its own with a Redis result backend, which
both sides then pay for; the other figures run without, as in production. Times run from the submission in this
process to the end recorded by the worker (the run's ``end_time``, or a mark the last no-op writes to Redis), so
polling for the end adds nothing. The two sides of a figure take turns, round after round, and the median round is
kept, so that load from elsewhere on the machine hits both.
"""

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run_all import (  # noqa: E402 - needs the project root on sys.path first
    BENCH_SETTINGS,
    Figure,
    database_vendor,
    setup_django,
    throwaway_database,
    wait_until,
    write_figures,
)
from neena.embedded_redis import EmbeddedRedis  # noqa: E402

CHAIN_LENGTH = 50
FAN_OUT_WIDTH = 200
THROUGHPUT_RUNS = 30
THROUGHPUT_STEPS = 5
SEQUENTIAL_ROUNDS = 5
FAN_OUT_ROUNDS = 3
THROUGHPUT_ROUNDS = 2
DAG_SIZES = (100, 1_000, 10_000)
# No single run or baseline may take longer than this; the whole benchmark stays within a few minutes.
RUN_TIMEOUT_SECONDS = 120.0
# Only how soon the end is noticed: the figures use the end the worker recorded.
POLL_SECONDS = 0.05


def log(message: str) -> None:
    print(f"bench/engine: {message}", file=sys.stderr, flush=True)


@contextmanager
def celery_worker(environment: dict[str, str], concurrency: int = 2) -> Iterator[subprocess.Popen[bytes]]:
    """One ``celery worker`` on Neena's app plus the baseline's tasks; stopped (its whole process group) on exit."""
    with tempfile.NamedTemporaryFile(prefix="neena-bench-worker-", suffix=".log") as output:
        process = subprocess.Popen(  # noqa: S603 - a fixed argument list
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "neena",
                "worker",
                "--include",
                "bench.celery_baseline",
                "--queues",
                "celery,integrations",
                "--concurrency",
                str(concurrency),
                "--pool",
                "prefork",
                "--hostname",
                f"bench-{os.getpid()}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env={**os.environ, **environment},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log_path = Path(output.name)

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited:\n{log_path.read_text(errors='replace')[-3000:]}")
            text = log_path.read_text(errors="replace")
            if " ready." in text:
                if "bench.noop" not in text:
                    raise RuntimeError("the worker did not load bench.celery_baseline (--include)")
                return True
            return False

        try:
            wait_until(ready, timeout=60, interval=0.1, what="the Celery worker")
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)


class EngineBench:
    """The product's side and the raw Celery side of each figure, on the same worker and Redis."""

    def __init__(self, redis_url: str) -> None:
        import redis

        from apps.accounts.models import Organization
        from apps.accounts.services import user_create

        self.marks = redis.Redis.from_url(redis_url)
        self.owner = user_create(email=f"bench-{uuid.uuid4().hex[:8]}@example.com")
        Organization.objects.filter(memberships__user=self.owner).update(
            approval_policy=Organization.ApprovalPolicy.NEVER
        )
        self.chain_flow = self._flow(CHAIN_LENGTH, [(index, index + 1) for index in range(CHAIN_LENGTH - 1)])
        join = FAN_OUT_WIDTH
        self.fan_out_flow = self._flow(FAN_OUT_WIDTH + 1, [(index, join) for index in range(FAN_OUT_WIDTH)])
        self.short_flow = self._flow(THROUGHPUT_STEPS, [(index, index + 1) for index in range(THROUGHPUT_STEPS - 1)])

    def _flow(self, steps: int, edges: list[tuple[int, int]]) -> Any:
        from apps.flows.services import DependencyDraft, TaskOperationDraft, flow_create
        from apps.integrations.models import TaskDefinition

        format_text = TaskDefinition.objects.get(task_name="Format Text", deleted_at__isnull=True)
        return flow_create(
            user=self.owner,
            name=f"Bench {steps} steps",
            task_operations=[
                TaskOperationDraft(
                    index=index,
                    name=f"Step {index}",
                    task_definition=format_text.id,
                    instruction="",
                    parameters={"template": f"line {index}"},
                )
                for index in range(steps)
            ],
            dependencies=[DependencyDraft(source, target) for source, target in edges],
        )

    # --- The product's side -------------------------------------------------------------------------------------

    def run_flows(self, flow: Any, count: int = 1) -> float:
        """Executes ``flow`` ``count`` times at once; seconds from the first submission until the last run ended."""
        from apps.flows.services import flow_request_create
        from apps.runs.models import FlowRun
        from apps.runs.services.run_creation import flow_execute

        requests = [
            flow_request_create(user=self.owner, request_instructions="Benchmark.", request_metadata=None)
            for _ in range(count)
        ]
        started = time.time()
        run_ids = [flow_execute(user=self.owner, flow=flow, flow_request=request).id for request in requests]

        def ended() -> list[tuple[str, Any]] | None:
            finished = FlowRun.objects.filter(id__in=run_ids, status__in=FlowRun.TERMINAL)
            rows = list(finished.values_list("status", "end_time"))
            return rows if len(rows) == count else None

        rows = wait_until(ended, timeout=RUN_TIMEOUT_SECONDS, interval=POLL_SECONDS, what=f"{count} run(s) of {flow}")
        failed = [status for status, _ in rows if status != FlowRun.Status.COMPLETED]
        if failed:
            raise RuntimeError(f"{len(failed)} benchmark run(s) ended {failed[0]}")
        return max(end_time.timestamp() for _, end_time in rows) - started

    # --- The raw Celery side -------------------------------------------------------------------------------------

    def _send_and_wait(self, signatures: list[Any], marks: list[str]) -> float:
        started = time.time()
        for signature in signatures:
            signature.apply_async()

        def all_marked() -> list[Any] | None:
            values = self.marks.mget(marks)
            return values if all(values) else None

        values = wait_until(all_marked, timeout=RUN_TIMEOUT_SECONDS, interval=POLL_SECONDS, what="the raw baseline")
        return max(float(value) for value in values) - started

    def run_chains(self, length: int, count: int = 1) -> float:
        """``count`` raw chains of ``length`` no-ops at once; seconds until the last chain's last task ran."""
        from celery import chain

        from bench.celery_baseline import noop

        marks = [f"bench:{uuid.uuid4()}" for _ in range(count)]
        chains = [chain(*[noop.si() for _ in range(length - 1)], noop.si(mark=mark)) for mark in marks]
        return self._send_and_wait(chains, marks)

    def run_chord(self, width: int) -> float:
        """A raw chord of ``width`` no-ops with a no-op body; seconds until the body ran."""
        from celery import chord

        from bench.celery_baseline import noop

        mark = f"bench:{uuid.uuid4()}"
        return self._send_and_wait([chord([noop.si() for _ in range(width)], noop.si(mark=mark))], [mark])


def alternate(
    rounds: int, product: Callable[[], float], baseline: Callable[[], float], warm_up: Callable[[], object]
) -> tuple[float, float]:
    """Warms the worker up, then runs both sides ``rounds`` times, taking turns at going first; their medians."""
    warm_up()
    product_times, baseline_times = [], []
    for number in range(rounds):
        if number % 2:
            baseline_times.append(baseline())
            product_times.append(product())
        else:
            product_times.append(product())
            baseline_times.append(baseline())
    return statistics.median(product_times), statistics.median(baseline_times)


def measure_sequential(bench: EngineBench, database: str) -> list[Figure]:
    """(a) and (c), on a worker without a result backend, as in production (a chain needs none)."""
    log(f"(a) {CHAIN_LENGTH}-step chain vs raw Celery chain, {SEQUENTIAL_ROUNDS} rounds")
    product, baseline = alternate(
        SEQUENTIAL_ROUNDS,
        lambda: bench.run_flows(bench.chain_flow),
        lambda: bench.run_chains(CHAIN_LENGTH),
        warm_up=lambda: (bench.run_flows(bench.chain_flow), bench.run_chains(CHAIN_LENGTH)),
    )
    sequential = Figure(
        key="engine.sequential",
        label=f"engine sequential step ({CHAIN_LENGTH}-step chain of Format Text)",
        value=product * 1000 / CHAIN_LENGTH,
        unit="ms/step",
        baseline_label=f"raw Celery chain of {CHAIN_LENGTH} no-ops",
        baseline=baseline * 1000 / CHAIN_LENGTH,
        lower_is_better=True,
        database=database,
    )
    log(f"(c) throughput: {THROUGHPUT_RUNS} {THROUGHPUT_STEPS}-step runs at once, {THROUGHPUT_ROUNDS} rounds")
    product, baseline = alternate(
        THROUGHPUT_ROUNDS,
        lambda: bench.run_flows(bench.short_flow, THROUGHPUT_RUNS),
        lambda: bench.run_chains(THROUGHPUT_STEPS, THROUGHPUT_RUNS),
        warm_up=lambda: None,
    )
    throughput = Figure(
        key="engine.throughput",
        label=f"engine throughput ({THROUGHPUT_STEPS}-step runs, 1 worker x 2 processes)",
        value=THROUGHPUT_RUNS * 60 / product,
        unit="runs/min",
        baseline_label=f"raw Celery {THROUGHPUT_STEPS}-task chains",
        baseline=THROUGHPUT_RUNS * 60 / baseline,
        lower_is_better=False,
        database=database,
    )
    return [sequential, throughput]


def measure_fan_out(bench: EngineBench, database: str) -> list[Figure]:
    """(b), on a worker with a result backend: a chord needs one, so both sides run with it."""
    log(f"(b) fan-out of {FAN_OUT_WIDTH} + join vs raw chord, {FAN_OUT_ROUNDS} rounds")
    product, baseline = alternate(
        FAN_OUT_ROUNDS,
        lambda: bench.run_flows(bench.fan_out_flow),
        lambda: bench.run_chord(FAN_OUT_WIDTH),
        # A fresh worker: a small run and a small chord load what the first job of each kind loads.
        warm_up=lambda: (bench.run_flows(bench.short_flow), bench.run_chord(10)),
    )
    return [
        Figure(
            key="engine.fanout",
            label=f"engine fan-out ({FAN_OUT_WIDTH} parallel steps + 1 join)",
            value=product * 1000,
            unit="ms",
            baseline_label=f"raw Celery chord of {FAN_OUT_WIDTH} no-ops + body",
            baseline=baseline * 1000,
            lower_is_better=True,
            database=database,
            note=f"{product * 1000 / (FAN_OUT_WIDTH + 1):.2f} vs {baseline * 1000 / (FAN_OUT_WIDTH + 1):.2f} ms/step",
        )
    ]


# --- (d) DAG validation -----------------------------------------------------------------------------------------------


def random_dag(steps: int, seed: int = 7) -> list[tuple[int, int]]:
    """A reproducible DAG: each step after the first depends on one to three earlier steps, mostly recent ones."""
    chooser = random.Random(seed)  # noqa: S311 - reproducible test data, not cryptography
    edges = set()
    for target in range(1, steps):
        for _ in range(chooser.randint(1, 3)):
            edges.add((max(0, target - 1 - int(chooser.expovariate(0.2))), target))
    return sorted(edges, key=lambda _: chooser.random())


def linear_pass(indices: list[int], edges: list[tuple[int, int]]) -> int:
    """The reference for DAG validation's growth: one dict and one set over the same input, nothing else."""
    positions = {edge: position for position, edge in enumerate(edges)}
    return len(set(indices)) + len(positions)


def median_ms(function: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def measure_dag() -> list[Figure]:
    """(d): validation time per size against the smallest size, and the same growth for a plain linear pass.

    Memory effects make even a linear pass grow more than tenfold per tenfold on large inputs; the linear pass's
    growth, measured beside it, tells them apart from an algorithm that is not linear.
    """
    from apps.flows.dag import validate_dag

    timings: dict[int, float] = {}
    reference: dict[int, float] = {}
    for steps in DAG_SIZES:
        indices = list(range(steps))
        edges = random_dag(steps)
        problems, order = validate_dag(indices, edges)
        if problems or len(order) != steps:
            raise RuntimeError(f"validate_dag rejected the benchmark's DAG of {steps} steps: {problems[:1]}")
        repeat = max(5, 200_000 // (steps * 10))
        timings[steps] = median_ms(lambda: validate_dag(indices, edges), repeat)  # noqa: B023 - used at once
        reference[steps] = median_ms(lambda: linear_pass(indices, edges), repeat)  # noqa: B023 - used at once
    smallest = DAG_SIZES[0]
    figures = []
    for steps in DAG_SIZES:
        previous = steps // 10
        note = ""
        if previous in timings:
            note = (
                f"{timings[steps] / timings[previous]:.1f}x for 10x the steps; "
                f"a plain linear pass over the same edges: {reference[steps] / reference[previous]:.1f}x"
            )
        figures.append(
            Figure(
                key=f"dag.validate_{steps}",
                label=f"DAG validation + topological sort, {steps:,} steps",
                value=timings[steps],
                unit="ms",
                baseline_label=f"{smallest:,} steps",
                baseline=timings[smallest],
                lower_is_better=True,
                note=note,
            )
        )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="also write the figures as JSON to this file (for bench/run_all.py)")
    arguments = parser.parse_args(argv)

    database = database_vendor(os.environ.get("DATABASE_URL"))
    with throwaway_database("engine") as database_url:
        redis_server = EmbeddedRedis()
        try:
            redis_url = redis_server.url
            setup_django(database_url, REDIS_URL=redis_url, CELERY_BROKER_URL=redis_url)
            from django.db import connections

            from neena.celery import app

            # A chord needs a result backend on both ends. This process (the client) has one from the start, so both
            # sides of every figure pay the same for their sends; the worker gets one for the fan-out figure only.
            app.conf.update(result_backend=redis_url)
            bench = EngineBench(redis_url)
            worker_environment = {"DJANGO_SETTINGS_MODULE": BENCH_SETTINGS, "DATABASE_URL": database_url}
            log(f"on {database}")
            with celery_worker(worker_environment):
                figures = measure_sequential(bench, database)
            with celery_worker({**worker_environment, "CELERY_RESULT_BACKEND": redis_url}):
                figures += measure_fan_out(bench, database)
            connections.close_all()
        finally:
            redis_server.stop()
    log("(d) DAG validation")
    figures += measure_dag()
    for figure in figures:
        figure.database = figure.database or database
    write_figures(figures, arguments.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
