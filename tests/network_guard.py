"""The network guard: no outbound connection while the code under test holds a database transaction open.

STYLE.md, "Slow work outside the transaction": an LLM call, an OAuth code exchange or a connector call made inside
``transaction.atomic()`` (or under ``select_for_update``, which needs one) holds the database's locks for as long as
the other side takes to answer. The guard finds every such call the suite makes:

- ``socket.socket.connect`` and ``connect_ex`` are wrapped, the lowest layer every client in the project goes through
  (httpx and with it the ``openai`` client, smtplib, urllib, redis-py; TLS sockets connect through them too). A
  connection to the test database or to a Redis the settings name (the broker, the cache) is not outbound work and is
  ignored, as are Unix sockets;
- a connection counts when one of the calling thread's database connections is inside an atomic block that is not
  one pytest-django opened around the test (Django tags those ``_from_testcase``, as its ``durable=True`` check does):
  a ``db`` test's wrapping transaction is not counted, a ``transaction=True`` test has none to begin with, and a block
  opened by a fixture or by the code under test is;
- ``Atomic.__enter__`` is wrapped to remember where each block was opened (``@transaction.atomic`` on a function, or
  ``with transaction.atomic()`` at a line), so the failure names the transaction and the address.

The call is not stopped (the code under test behaves as it would in production); it is recorded, and the test that
made it fails after its body ends (``tests/conftest.py``, ``pytest_runtest_call``). Celery worker processes the tests
start run through ``tests/celery_main.py``, which installs the guard there too; they append what they find to a file
in NEENA_NETWORK_GUARD_REPORT_DIR, which the test process reads after each test. A finding from a worker is reported
by the test running when it is read (a worker that is still busy after its test ended reports to the next one).
A test allowed to connect inside a transaction carries ``@pytest.mark.network_in_transaction_allowed(reason)``.
"""

import ipaddress
import json
import os
import socket
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPORT_DIR_VARIABLE = "NEENA_NETWORK_GUARD_REPORT_DIR"
ROOT = Path(__file__).resolve().parent.parent
# Frames of these files are machinery between the code that opened a block and the block.
_ATOMIC_MACHINERY = ("django/db/transaction.py", "contextlib.py")

_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex
_lock = threading.Lock()
_found: list["Violation"] = []
_report_dir: Path | None = None
_read_offsets: dict[Path, int] = {}


@dataclass(frozen=True)
class Violation:
    """One outbound connection made inside a transaction: where to, which blocks were open, and from where."""

    address: str
    database: str
    blocks: list[str]
    stack: list[str]
    process: str

    def message(self) -> str:
        blocks = "\n".join(f"      {depth}. {block}" for depth, block in enumerate(self.blocks, start=1))
        stack = "\n".join(f"      {line}" for line in self.stack) or "      (no frame of the project)"
        return (
            f"Outbound connection to {self.address} while the database connection '{self.database}' was inside "
            f"{len(self.blocks)} atomic block(s) opened by the code under test ({self.process}).\n"
            f"    Open blocks, outermost first:\n{blocks}\n"
            f"    Connected from:\n{stack}\n"
            "    Make the network call before the transaction opens (or after it commits) and keep the transaction "
            "short (STYLE.md, 'Slow work outside the transaction')."
        )


def _process_name() -> str:
    return f"process {os.getpid()} ({'test process' if _report_dir is None else 'worker'})"


def _where(frame: Any) -> str:
    """Where an atomic block was opened: the function ``@transaction.atomic`` decorates, or the ``with`` line."""
    while frame is not None:
        filename = frame.f_code.co_filename.replace(os.sep, "/")
        if filename.endswith("contextlib.py") and frame.f_code.co_name == "inner" and "func" in frame.f_locals:
            function = frame.f_locals["func"]
            return f"@transaction.atomic on {function.__module__}.{function.__qualname__}"
        if not filename.endswith(_ATOMIC_MACHINERY):
            return f"transaction.atomic() at {_relative(filename)}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back
    return "transaction.atomic() (origin unknown)"


def _relative(filename: str) -> str:
    try:
        return str(Path(filename).resolve().relative_to(ROOT))
    except ValueError:
        return filename


def _project_stack() -> list[str]:
    """The frames of the project's own code (apps/, neena/, tests/) leading to the connection, outermost first."""
    lines = []
    for frame in traceback.extract_stack()[:-3]:
        relative = _relative(frame.filename)
        if relative.startswith(("apps/", "neena/", "tests/")) and not relative.startswith("tests/network_guard.py"):
            lines.append(f"{relative}:{frame.lineno} in {frame.name}")
    return lines[-12:]


def _open_blocks() -> tuple[str, list[str]] | None:
    """The first of this thread's database connections inside blocks of the code under test, with those blocks."""
    if "django.db" not in sys.modules:
        return None
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        depths = [depth for depth, block in enumerate(connection.atomic_blocks) if not block._from_testcase]
        if depths:
            origins = getattr(connection, "_network_guard_origins", {})
            return connection.alias, [origins.get(depth, "transaction.atomic() (origin unknown)") for depth in depths]
    return None


def _host_port(url: str) -> set[tuple[str, int]]:
    try:
        parts = urlsplit(url)
        return {(parts.hostname, parts.port or 6379)} if parts.hostname else set()
    except ValueError:
        return set()


def _ignored_addresses() -> set[tuple[str, int]]:
    """The test database's and the Redis servers' addresses, as the settings name them now."""
    from django.conf import settings

    addresses: set[tuple[str, int]] = set()
    for database in settings.DATABASES.values():
        if database.get("HOST"):
            addresses.add((database["HOST"], int(database.get("PORT") or 5432)))
    urls = [getattr(settings, name, "") for name in ("CELERY_BROKER_URL", "REDIS_URL", "NEENA_CACHE_URL")]
    urls += [str(cache.get("LOCATION", "")) for cache in settings.CACHES.values()]
    for url in urls:
        if url and url.startswith(("redis://", "rediss://")):
            addresses |= _host_port(url)
    return {(_normalised(host), port) for host, port in addresses}


def _normalised(host: str) -> str:
    host = host.strip("[]")
    if host == "localhost":
        return "127.0.0.1"
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _check(sock: socket.socket, address: Any) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
        return
    open_blocks = _open_blocks()
    if open_blocks is None:
        return
    host, port = _normalised(str(address[0])), int(address[1])
    ignored = _ignored_addresses()
    if (host, port) in ignored or (host == "::1" and ("127.0.0.1", port) in ignored):
        return
    database, blocks = open_blocks
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    _record(Violation(shown, database, blocks, _project_stack(), _process_name()))


def _record(violation: Violation) -> None:
    with _lock:
        if _report_dir is None:
            _found.append(violation)
            return
        with (_report_dir / f"{os.getpid()}.jsonl").open("a") as report:
            report.write(json.dumps(asdict(violation)) + "\n")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check(self, address)
    return _original_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check(self, address)
    return _original_connect_ex(self, address)


def install(*, report_dir: Path | None = None) -> None:
    """Wraps the socket's connect and Django's ``Atomic.__enter__``. With ``report_dir`` (a worker process), what is
    found is appended to a file there instead of kept in memory."""
    global _report_dir
    from django.db import transaction

    _report_dir = report_dir
    if getattr(transaction.Atomic.__enter__, "_network_guard", False):
        return
    original_enter = transaction.Atomic.__enter__

    def enter(self: Any) -> None:
        original_enter(self)
        from django.db.transaction import get_connection

        connection = get_connection(self.using)
        if connection.atomic_blocks and connection.atomic_blocks[-1] is self:
            origins = connection.__dict__.setdefault("_network_guard_origins", {})
            origins[len(connection.atomic_blocks) - 1] = _where(sys._getframe(1))

    enter._network_guard = True  # type: ignore[attr-defined]
    transaction.Atomic.__enter__ = enter  # type: ignore[method-assign]
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


def install_from_environment() -> None:
    """In a worker process the tests started: installs the guard reporting to NEENA_NETWORK_GUARD_REPORT_DIR, when
    that is set."""
    directory = os.environ.get(REPORT_DIR_VARIABLE)
    if directory:
        install(report_dir=Path(directory))


def take(report_dir: Path | None = None) -> list[Violation]:
    """What was found since the last call, in this process and in the worker processes reporting to ``report_dir``."""
    with _lock:
        found = list(_found)
        _found.clear()
    if report_dir is not None:
        for path in sorted(report_dir.glob("*.jsonl")):
            with path.open("rb") as report:
                report.seek(_read_offsets.get(path, 0))
                complete, _, _ = report.read().rpartition(b"\n")  # a line still being written is read next time
            if complete:
                _read_offsets[path] = _read_offsets.get(path, 0) + len(complete) + 1
                found += [Violation(**json.loads(line)) for line in complete.split(b"\n")]
    return found


@contextmanager
def violations_caught() -> Iterator[list[Violation]]:
    """For the guard's own tests: what this process finds inside the block is handed to the test, not failed on."""
    caught: list[Violation] = []
    before = take()
    try:
        yield caught
    finally:
        caught += take()
        with _lock:
            _found[:0] = before
