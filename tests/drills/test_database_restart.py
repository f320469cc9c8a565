"""Drill: PostgreSQL stops for a few seconds in the middle of a run, then starts again.

While the database is down, the API answers 503 (never 500) and accepts nothing; the worker's jobs fail and their
steps are left claimed or readied. Once it is back, the sweeper queues them again and the run completes, every step
once, no side effect twice; what the API accepted before the outage is still there.

Only on the throwaway server ``scripts/with_postgres.sh`` starts (``make test-postgres``, CI): the drill stops a
server only when it finds its data directory under that script's ``/tmp/neena-postgres.*`` and can run ``pg_ctl`` as
the directory's owner; otherwise it is skipped, saying why. On SQLite there is no server to stop.
"""

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.db import connection

from apps.accounts.models import Organization
from apps.accounts.services import api_key_create
from apps.flows.models import FlowRequest
from apps.runs.services.run_creation import flow_execute
from tests.drills.harness import (
    ONE_STEP_PER_JOB,
    SupervisedWorker,
    assert_completed_once,
    completed_steps,
    finish_with_the_sweeper,
    notifying_chain,
)
from tests.runs.flows import make_request, set_policy
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live_server]

LENGTH = 80
DOWN_SECONDS = 3.0
# Where scripts/with_postgres.sh keeps its throwaway servers (WORK_DIR=$(mktemp -d /tmp/neena-postgres.XXXXXX)).
THROWAWAY_PREFIX = "/tmp/neena-postgres."  # noqa: S108 - compared with a path, never created nor written


@dataclass(frozen=True)
class PostgresServer:
    """A server this drill may stop: its data directory, its ``pg_ctl`` and how to run it as the files' owner."""

    data_directory: Path
    pg_ctl: str
    run_as: tuple[str, ...]

    def pg_ctl_command(self, *arguments: str) -> None:
        subprocess.run(
            [*self.run_as, self.pg_ctl, "--pgdata", str(self.data_directory), *arguments],
            check=True,
            capture_output=True,
            timeout=90,
            cwd="/",
        )

    def stop(self) -> None:
        self.pg_ctl_command("--mode", "fast", "--wait", "stop")

    def start(self) -> None:
        log = self.data_directory.parent / "server.log"
        self.pg_ctl_command("--log", str(log), "--wait", "--timeout", "60", "start")


def _pg_ctl() -> str | None:
    found = shutil.which("pg_ctl")
    if found:
        return found
    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda path: int(path.parts[-3]))
    return str(installed[-1]) if installed else None


def throwaway_server() -> PostgresServer:
    """The server under the test database, if it is one ``scripts/with_postgres.sh`` started; else skips the test."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (make test-postgres): on SQLite there is no database server to stop")
    if connection.settings_dict["HOST"] not in ("127.0.0.1", "localhost"):
        pytest.skip("the database server is not on this machine")
    with connection.cursor() as cursor:
        cursor.execute("SHOW data_directory")
        data_directory = Path(cursor.fetchone()[0])
    if not str(data_directory).startswith(THROWAWAY_PREFIX):
        pytest.skip(f"{data_directory} is not a throwaway server of scripts/with_postgres.sh; refusing to stop it")
    pid_file = data_directory / "postmaster.pid"
    try:
        # postmaster.pid: pid, data directory, start time, port, ...
        lines = pid_file.read_text().splitlines()
    except OSError as error:
        pytest.skip(f"cannot read {pid_file}: {error}")
    if lines[3].strip() != str(connection.settings_dict["PORT"]):
        pytest.skip(f"{pid_file} names port {lines[3]}, not the test database's")
    pg_ctl = _pg_ctl()
    if pg_ctl is None:
        pytest.skip("pg_ctl not found")
    owner = data_directory.stat().st_uid
    if owner == os.getuid():
        run_as: tuple[str, ...] = ()
    elif os.getuid() == 0 and shutil.which("runuser"):
        import pwd

        run_as = ("runuser", "-u", pwd.getpwuid(owner).pw_name, "--")
    else:
        pytest.skip("the server's files belong to another user, and this process cannot act as that user")
    return PostgresServer(data_directory=data_directory, pg_ctl=pg_ctl, run_as=run_as)


@contextmanager
def stopped(server: PostgresServer) -> Iterator[None]:
    """The server is down inside the block, and started again on the way out whatever happened."""
    connection.close()
    server.stop()
    try:
        yield
    finally:
        server.start()
        connection.close()


def test_database_restart_mid_run_answers_503_then_the_run_completes(owner, organization, redis_server, live_server):
    server = throwaway_server()
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow = notifying_chain(owner, LENGTH)
    token = api_key_create(user=owner, scopes=["read", "write"])
    http = httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    before = http.post("/api/v1/flow_requests/", json={"request_instructions": "Accepted before the outage."})
    assert before.status_code == 200, before.text

    worker = SupervisedWorker(broker_url=redis_server.url, name="database-drill", environment=ONE_STEP_PER_JOB)
    try:
        flow_run = flow_execute(user=owner, flow=flow, flow_request=make_request(owner))
        wait_for(lambda: completed_steps(flow_run) >= 10, timeout=30, message="the run to get going")
        with stopped(server):
            down_since = time.monotonic()
            read = http.get("/api/v1/flow_runs/all")
            write = http.post("/api/v1/flow_requests/", json={"request_instructions": "Sent during the outage."})
            time.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - down_since)))
        assert read.status_code == 503, read.text
        assert read.json()["code"] == "database_unavailable"
        assert write.status_code == 503, write.text
        assert completed_steps(flow_run) < LENGTH, "the run finished before the database stopped; make it longer"
        finish_with_the_sweeper(flow_run, worker=worker, timeout=120)
        after = http.post("/api/v1/flow_requests/", json={"request_instructions": "Accepted after the outage."})
    finally:
        worker.stop()
        http.close()

    assert_completed_once(flow_run, LENGTH)
    assert after.status_code == 200, after.text
    accepted = {before.json()["id"], after.json()["id"]}
    assert set(map(str, FlowRequest.objects.filter(id__in=accepted).values_list("id", flat=True))) == accepted
    assert not FlowRequest.objects.filter(request_instructions="Sent during the outage.").exists()
