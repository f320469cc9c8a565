"""Slow-client benchmark: does the web server keep answering while hundreds of clients dribble their headers?

    python bench/slow_clients.py [--clients 300] [--duration 15] [--json PATH] [--check]

Runs gunicorn exactly as `make run` and docker-compose.yml do (``gunicorn.conf.py`` with its default worker settings,
bound to a free 127.0.0.1 port) on a throwaway SQLite database. ``--clients`` connections are opened and each sends
one byte of an endless request header per second (slowloris) for ``--duration`` seconds, while another client asks
``GET /healthz`` twice a second. The baseline is the same probe against the same server with no slow client,
measured first. Printed: the slowest probe answer with and without the slow clients (and p50); the target is under
1 s. Everything is sent to 127.0.0.1 only, bounded in connections and time.

Exit status: 1 with ``--check`` when the target is missed or a probe failed; else 0.
"""

import argparse
import contextlib
import http.client
import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run_all import (  # noqa: E402 - needs the project root on sys.path first
    BENCH_SETTINGS,
    Figure,
    gunicorn_server,
    target_for,
    throwaway_database,
    write_figures,
)
from neena.embedded_redis import EmbeddedRedis  # noqa: E402

PROBE_INTERVAL_SECONDS = 0.5
PROBE_TIMEOUT_SECONDS = 10.0
# Hard bounds whatever the arguments say.
MAX_CLIENTS = 1000
MAX_DURATION_SECONDS = 60.0


def log(message: str) -> None:
    print(f"slow_clients: {message}", file=sys.stderr, flush=True)


def probe(port: int) -> float:
    """Seconds until ``GET /healthz`` on a new connection has answered 200; raises on any other answer."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT_SECONDS)
    try:
        connection.request("GET", "/healthz", headers={"Host": "localhost"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise OSError(f"/healthz answered {response.status}")
    finally:
        connection.close()
    return time.monotonic() - started


def probe_for(port: int, duration: float) -> list[float]:
    """Probes every PROBE_INTERVAL_SECONDS for ``duration`` seconds; a failed probe counts as the timeout."""
    latencies = []
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        try:
            latencies.append(probe(port))
        except OSError as error:
            log(f"probe failed: {error}")
            latencies.append(PROBE_TIMEOUT_SECONDS)
        time.sleep(PROBE_INTERVAL_SECONDS)
    return latencies


def dribble(port: int, clients: int, stop: threading.Event) -> None:
    """Opens ``clients`` connections and sends each one byte of a never-ending header per second until ``stop``."""
    header = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 4000
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(clients)]
    try:
        position = 0
        while not stop.is_set():
            for connection in sockets:
                # The server may close a connection it has waited on long enough: that is allowed.
                with contextlib.suppress(OSError):
                    connection.send(header[position % len(header) : position % len(header) + 1])
            position += 1
            stop.wait(1.0)
    finally:
        for connection in sockets:
            connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=300, help="slow connections (default 300)")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of slow clients (default 15)")
    parser.add_argument("--json", help="also write the figures as JSON to this path")
    parser.add_argument("--check", action="store_true", help="exit with status 1 when the target is missed")
    arguments = parser.parse_args(argv)
    clients = min(arguments.clients, MAX_CLIENTS)
    duration = min(arguments.duration, MAX_DURATION_SECONDS)
    # The figure is for the embedded default, SQLite, whatever DATABASE_URL the shell exports.
    os.environ.pop("DATABASE_URL", None)

    redis_server = EmbeddedRedis()
    try:
        with throwaway_database("slow_clients") as database_url:
            environment = {
                **os.environ,
                "DJANGO_SETTINGS_MODULE": BENCH_SETTINGS,
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_server.url,
            }
            with gunicorn_server(environment) as base_url:
                port = int(base_url.rsplit(":", 1)[1])
                log(f"gunicorn on 127.0.0.1:{port}; probing /healthz with no slow client")
                quiet = probe_for(port, duration=min(5.0, duration))
                log(f"{clients} slow clients for {duration:g} s, probing /healthz")
                stop = threading.Event()
                dribbler = threading.Thread(target=dribble, args=(port, clients, stop), daemon=True)
                dribbler.start()
                try:
                    time.sleep(2.0)  # every slow connection is open and has started its header
                    loaded = probe_for(port, duration=duration)
                finally:
                    stop.set()
                    dribbler.join(timeout=10)
    finally:
        redis_server.stop()

    figure = Figure(
        key="web.slow_clients",
        label=f"slowest GET /healthz with {clients} slow clients",
        value=max(loaded) * 1000,
        baseline=max(quiet) * 1000,
        baseline_label="with none",
        unit="ms",
        lower_is_better=True,
        database="sqlite",
        extra={"p50_ms": statistics.median(loaded) * 1000},
        note=f"{len(loaded)} probes, gunicorn.conf.py defaults",
    )
    write_figures([figure], arguments.json)
    target = target_for(figure)
    missed = target is not None and not target.met(figure)
    return 1 if arguments.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
