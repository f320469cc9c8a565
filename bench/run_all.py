"""Runs the engine and API benchmarks and prints one line per figure, beside its baseline, with the targets.

    python bench/run_all.py            # on SQLite, or on PostgreSQL when DATABASE_URL points to one

Every figure is measured against a baseline taken in the same run, on the same machine, at the same time (a raw Celery
chain, chord or chain burst; a DRF hello-world; the smallest DAG), because absolute figures on a shared two-core
machine say little. The ratio is the claim; the targets (DESIGN.md §5, "sequential flows cost less than a Celery
chain") are checked against it.

This module is also the benchmarks' harness, shared by ``bench/engine.py`` and ``bench/api.py``: the ``Figure``
they report, the targets, and the throwaway database and Redis they run on (never ``var/neena.sqlite3``). Each
benchmark runs in its own process (Django is set up once per process, on its own database); this one starts them,
each bounded in time, and reads their figures back as JSON.
"""

import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BENCH_SETTINGS = "bench.settings"
# Each benchmark bounds its own phases; this is the backstop for a benchmark that hangs anyway.
BENCHMARK_TIMEOUT_SECONDS = 900


@dataclass
class Figure:
    """One measured figure and the baseline measured beside it in the same run.

    ``ratio`` is value / baseline. Whether lower is better (times) or higher (rates) decides how targets read it.
    ``extra`` holds figures some targets need (latency percentiles).
    """

    key: str
    label: str
    value: float
    unit: str
    baseline_label: str
    baseline: float
    lower_is_better: bool
    database: str = ""
    extra: dict[str, float] = field(default_factory=dict)
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Figure":
        return cls(**data)


@dataclass(frozen=True)
class Target:
    """A bound on a figure's ratio to its baseline, and optionally on its p99 latency."""

    max_ratio: float | None = None
    min_ratio: float | None = None
    max_p99_ms: float | None = None
    # A bound on the figure itself, in its unit, where the claim is absolute (the slowest answer under slow clients).
    max_value: float | None = None

    def describe(self) -> str:
        parts = []
        if self.max_value is not None:
            parts.append(f"< {self.max_value:g}")
        if self.max_ratio is not None:
            parts.append(f"<= {self.max_ratio:g}x")
        if self.min_ratio is not None:
            parts.append(f">= {self.min_ratio:g}x")
        if self.max_p99_ms is not None:
            parts.append(f"p99 < {self.max_p99_ms:g} ms")
        return " and ".join(parts)

    def met(self, figure: Figure) -> bool:
        ratio = figure.ratio
        if self.max_value is not None and figure.value >= self.max_value:
            return False
        if self.max_ratio is not None and ratio > self.max_ratio:
            return False
        if self.min_ratio is not None and ratio < self.min_ratio:
            return False
        return not (self.max_p99_ms is not None and figure.extra.get("p99_ms", float("inf")) >= self.max_p99_ms)


# Targets by figure key, then by database ("" when the same on both).
TARGETS: dict[str, dict[str, Target]] = {
    "engine.sequential": {"sqlite": Target(max_ratio=1.5), "postgresql": Target(max_ratio=2.0)},
    "engine.fanout": {"": Target(max_ratio=1.5)},
    "api.flow_runs_all": {"": Target(min_ratio=0.2, max_p99_ms=150)},
    "web.slow_clients": {"": Target(max_value=1000)},
}


def target_for(figure: Figure) -> Target | None:
    targets = TARGETS.get(figure.key, {})
    return targets.get(figure.database) or targets.get("")


def _number(value: float) -> str:
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def format_line(figure: Figure) -> str:
    """``[database] label: value unit | baseline: value unit | ratio | target: met / not met``."""
    extra = "".join(f", {name.removesuffix('_ms')} {_number(value)} ms" for name, value in figure.extra.items())
    line = (
        f"[{figure.database}] {figure.label}: {_number(figure.value)} {figure.unit}{extra}"
        f" | baseline {figure.baseline_label}: {_number(figure.baseline)} {figure.unit}"
        f" | ratio {figure.ratio:.2f}x"
    )
    target = target_for(figure)
    if target is not None:
        line += f" | target {target.describe()}: {'met' if target.met(figure) else 'NOT MET'}"
    if figure.note:
        line += f" ({figure.note})"
    return line


def write_figures(figures: list[Figure], path: str | None) -> None:
    """Prints the figures; with ``path``, also writes them as JSON there for ``run_all`` to read."""
    for figure in figures:
        print(format_line(figure), flush=True)
    if path:
        Path(path).write_text(json.dumps([asdict(figure) for figure in figures]))


# --- The throwaway environment --------------------------------------------------------------------------------------


def database_vendor(url: str | None) -> str:
    return "postgresql" if url and url.split(":", 1)[0] in ("postgres", "postgresql", "pgsql") else "sqlite"


def _migrate(database_url: str) -> None:
    """``manage.py migrate`` on the throwaway database (the catalogue is synced after migrating)."""
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": BENCH_SETTINGS, "DATABASE_URL": database_url}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=environment,
        check=True,
        timeout=300,
    )


@contextlib.contextmanager
def throwaway_database(name: str) -> Iterator[str]:
    """A migrated database of its own for one benchmark, deleted afterwards; yields its DATABASE_URL.

    PostgreSQL when DATABASE_URL points to a server (a new database on that server, named after the benchmark and
    this process), else a SQLite file in a temporary directory.
    """
    server_url = os.environ.get("DATABASE_URL", "")
    if database_vendor(server_url) == "sqlite":
        directory = tempfile.mkdtemp(prefix=f"neena-bench-{name}-")
        try:
            database_url = f"sqlite:///{directory}/{name}.sqlite3"
            _migrate(database_url)
            yield database_url
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return

    import psycopg
    from psycopg import sql

    database = f"neena_bench_{name}_{os.getpid()}"
    parts = urlsplit(server_url)
    # psycopg wants the postgresql:// scheme; Django's env parser also accepts postgres://.
    maintenance_url = urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, parts.fragment))
    with psycopg.connect(maintenance_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        database_url = urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))
        _migrate(database_url)
        yield database_url
    finally:
        with psycopg.connect(maintenance_url, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def setup_django(database_url: str, **environment: str) -> None:
    """Points this process at the throwaway database (and whatever else is given), then sets Django up."""
    os.environ.update({"DJANGO_SETTINGS_MODULE": BENCH_SETTINGS, "DATABASE_URL": database_url, **environment})
    import django

    django.setup()


def wait_until(predicate: Any, *, timeout: float, interval: float = 0.01, what: str) -> Any:
    """Polls ``predicate()`` until it returns something truthy, which it returns; raises after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"Timed out after {timeout:.0f} s waiting for {what}")


@contextlib.contextmanager
def gunicorn_server(
    environment: dict[str, str], *, workers: int | None = None, ready_path: str = "/healthz"
) -> Iterator[str]:
    """The production web server (gunicorn with ``gunicorn.conf.py``, the command Dockerfile and compose run) on
    127.0.0.1 and a free port, with ``environment`` over this process's; yields its base URL once ``ready_path``
    answers 200, and stops the whole process group afterwards. Its output goes to a temporary file, shown when it
    exits early."""
    from neena.embedded_redis import free_port

    port = free_port()
    overrides = {"NEENA_WEB_BIND": f"127.0.0.1:{port}"}
    if workers is not None:
        overrides["NEENA_WEB_WORKERS"] = str(workers)
    with tempfile.NamedTemporaryFile(prefix="neena-bench-gunicorn-", suffix=".log") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "neena.asgi:application", "--config", "gunicorn.conf.py"],
            cwd=ROOT,
            env={**os.environ, **environment, **overrides},
            # The access log is part of the production configuration: it is written, to a file nobody reads.
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base_url = f"http://127.0.0.1:{port}"

        def answering() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{Path(output.name).read_text(errors='replace')[-3000:]}")
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
            try:
                connection.request("GET", ready_path, headers={"Host": "localhost"})
                return connection.getresponse().status == 200
            except OSError:
                return False
            finally:
                connection.close()

        try:
            wait_until(answering, timeout=60, interval=0.1, what="gunicorn to answer")
            yield base_url
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


# --- Running everything ---------------------------------------------------------------------------------------------


def _run_benchmark(script: str) -> list[Figure]:
    with tempfile.NamedTemporaryFile(suffix=".json") as output:
        completed = subprocess.run(  # noqa: S603 - this interpreter running one of the benchmark scripts
            [sys.executable, str(ROOT / "bench" / script), "--json", output.name],
            cwd=ROOT,
            timeout=BENCHMARK_TIMEOUT_SECONDS,
            check=False,
            stdout=subprocess.DEVNULL,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"bench/{script} failed with status {completed.returncode}")
        return [Figure.from_dict(item) for item in json.loads(Path(output.name).read_text())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["engine", "api"], help="run one benchmark only")
    parser.add_argument("--check", action="store_true", help="exit with status 1 when a target is not met")
    arguments = parser.parse_args(argv)
    scripts = [f"{arguments.only}.py"] if arguments.only else ["engine.py", "api.py"]

    vendor = database_vendor(os.environ.get("DATABASE_URL"))
    print(f"Benchmarks on {vendor}, {os.cpu_count()} CPUs; every ratio is against a baseline of the same run.")
    figures: list[Figure] = []
    failed = []
    for script in scripts:
        started = time.monotonic()
        try:
            figures += _run_benchmark(script)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            failed.append(script)
            print(f"bench/{script}: {error}", file=sys.stderr)
        print(f"(bench/{script} took {time.monotonic() - started:.0f} s)", file=sys.stderr)
    print()
    for figure in figures:
        print(format_line(figure))
    missed = [figure.label for figure in figures if (target := target_for(figure)) and not target.met(figure)]
    print(f"\ntargets: {sum(1 for f in figures if target_for(f)) - len(missed)} met, {len(missed)} not met")
    if failed:
        return 2
    return 1 if arguments.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
