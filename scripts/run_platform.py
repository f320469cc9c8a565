"""Runs the whole platform in the foreground: embedded Redis (unless REDIS_URL is set), the web server, one Celery
worker and Celery beat. Ctrl-C (or any process exiting) stops them all.

Used by ``make run``; the README documents the settings it reads (NEENA_HOST, NEENA_PORT, REDIS_URL).

Every process it starts shares one Prometheus multiprocess directory, ``var/metrics/<this run's pid>`` (finished runs'
directories are removed first), so ``/metrics`` on the web server sums the web workers' and the Celery pool's
counters. It must be empty when the processes start: values of an earlier run would be added in.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from neena.embedded_redis import EmbeddedRedis  # noqa: E402 - needs the project root on sys.path first


def _running(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def fresh_metrics_directory(parent: Path) -> Path:
    """An empty directory for this run's Prometheus multiprocess files. Those of earlier runs are deleted, except
    a directory whose run is still going (a second ``make run`` in the same checkout keeps its own)."""
    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.iterdir():
        if not _running(old.name):
            shutil.rmtree(old, ignore_errors=True)
    directory = parent / str(os.getpid())
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    return directory


def main() -> int:
    environment = dict(os.environ)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    embedded_redis = None
    if not environment.get("REDIS_URL"):
        port = int(environment.get("NEENA_EMBEDDED_REDIS_PORT") or 0) or None
        embedded_redis = EmbeddedRedis(port=port, directory=ROOT / "var" / "redis")
        environment["REDIS_URL"] = embedded_redis.url
        print(f"Embedded Redis on {embedded_redis.url}", flush=True)

    environment["PROMETHEUS_MULTIPROC_DIR"] = str(fresh_metrics_directory(ROOT / "var" / "metrics"))

    bind = f"{environment.get('NEENA_HOST', '127.0.0.1')}:{environment.get('NEENA_PORT', '8000')}"
    # Inbound webhook URLs point at this server unless a public address is configured.
    environment.setdefault("NEENA_PUBLIC_BASE_URL", f"http://{bind}")
    commands = {
        "web": [str(BIN / "gunicorn"), "neena.asgi:application", "--config", "gunicorn.conf.py", "--bind", bind],
        "worker": [
            str(BIN / "celery"),
            "-A",
            "neena",
            "worker",
            "--queues",
            f"{environment.get('NEENA_ORCHESTRATION_QUEUE', 'celery')},"
            f"{environment.get('NEENA_INTEGRATIONS_QUEUE', 'integrations')}",
            "--loglevel",
            "INFO",
            "--concurrency",
            environment.get("NEENA_WORKER_CONCURRENCY", "2"),
        ],
        "beat": [
            str(BIN / "celery"),
            "-A",
            "neena",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(ROOT / "var" / "celerybeat-schedule"),
        ],
    }
    for name, command in commands.items():
        processes[name] = subprocess.Popen(command, cwd=ROOT, env=environment)

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, process in processes.items():
            if process.poll() is not None:
                print(f"{name} exited with status {process.returncode}; stopping everything.", flush=True)
                exit_code = process.returncode or 1
                stopping = True
                break
        time.sleep(0.5)

    for process in reversed(list(processes.values())):
        if process.poll() is None:
            process.terminate()
    for process in processes.values():
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    if embedded_redis:
        embedded_redis.stop()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
