"""Real Celery worker processes for the tests that exercise execution, against the session's real Redis."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.db import connection

from neena.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    """A DATABASE_URL for the test database the suite is using (after pytest-django created it)."""
    settings = connection.settings_dict
    if settings["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{settings['NAME']}"
    credentials = settings["USER"] + (f":{settings['PASSWORD']}" if settings["PASSWORD"] else "")
    return f"postgres://{credentials}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"


class CeleryWorker:
    """``celery worker`` in its own process group, so ``kill()`` can SIGKILL it and its pool at once."""

    def __init__(self, *, broker_url: str, name: str, concurrency: int = 2, environment: dict[str, str] | None = None):
        self.name = name
        self.log = tempfile.NamedTemporaryFile(prefix=f"neena-{name}-", suffix=".log", delete=False)  # noqa: SIM115
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "neena.settings.test",
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": broker_url,
            "CELERY_BROKER_URL": broker_url,
            **(environment or {}),
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.celery_main",  # celery itself, with the network guard (tests/network_guard.py) installed
                "-A",
                "neena",
                "worker",
                "--queues",
                "celery,integrations",
                "--concurrency",
                str(concurrency),
                "--pool",
                "prefork",
                "--hostname",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_until_ready()

    def _wait_until_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Celery worker {self.name} exited:\n{self.output()}")
            if " ready." in self.output():
                return
            time.sleep(0.1)
        raise RuntimeError(f"Celery worker {self.name} did not become ready:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL to the worker and its pool processes: nothing gets to clean up."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        Path(self.log.name).unlink(missing_ok=True)


def wait_for(predicate: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.1, message: str = "") -> Any:
    """Polls until ``predicate()`` is truthy and returns its value; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout} s waiting for {message or predicate}")


@contextmanager
def other_workers_paused(own_name: str, queues: tuple[str, ...] = ("celery", "integrations")) -> Iterator[list[str]]:
    """Every worker already on the broker but ``own_name`` stops consuming ``queues`` until the block ends (Celery
    remote control: cancel_consumer, then add_consumer). For a test whose own worker is started with settings the
    suite's shared worker does not have (a fake's base URL, an allow-list): no job goes to the wrong one."""
    replies = celery_app.control.ping(timeout=1.0) or []
    names = [name for reply in replies for name in reply if not name.startswith(f"{own_name}@")]
    for queue in queues if names else ():
        celery_app.control.cancel_consumer(queue, destination=names, reply=True, timeout=5.0)
    try:
        yield names
    finally:
        for queue in queues if names else ():
            celery_app.control.add_consumer(queue, destination=names, reply=True, timeout=5.0)
