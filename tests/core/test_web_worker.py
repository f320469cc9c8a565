"""The real web server (gunicorn with gunicorn.conf.py) answers the errors it handles itself as the API's JSON.

gunicorn refuses some requests before Django runs (414, 431, a malformed request); neena/web_worker.py makes those
answers JSON through two private parts of gunicorn, so this test starts the real server: a gunicorn upgrade that
changes them fails here. The ASGI body limit (apps/core/asgi_body_limit.py) only exists under the real server too.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from neena.embedded_redis import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
BODY_LIMIT = 1000

pytestmark = pytest.mark.live_server


def parse(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        decoded = b""
        while body:
            size_line, _, rest = body.partition(b"\r\n")
            size = int(size_line, 16)
            decoded, body = decoded + rest[:size], rest[size + 2 :]
            if size == 0:
                break
        body = decoded
    return int(lines[0].split()[1]), headers, body


def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Sends raw bytes to 127.0.0.1:port; the status, headers and body of the answer, read until it is complete."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
            if b"\r\n\r\n" in received:
                _, headers, body = parse(received)
                if len(body) >= int(headers.get("content-length", sys.maxsize)):
                    break
    return parse(received)


@pytest.fixture(scope="module")
def server_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the server's output goes: gunicorn's access and error logs and Django's lines."""
    return tmp_path_factory.mktemp("web_worker_log") / "gunicorn.log"


@pytest.fixture(scope="module")
def server_port(tmp_path_factory: pytest.TempPathFactory, server_log: Path) -> Iterator[int]:
    port = free_port()
    database = tmp_path_factory.mktemp("web_worker") / "db.sqlite3"
    log = server_log
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "neena.settings.base",
        "DATABASE_URL": f"sqlite:///{database}",
        "NEENA_WEB_BIND": f"127.0.0.1:{port}",
        "NEENA_WEB_WORKERS": "1",
        "NEENA_MAX_BODY_BYTES": str(BODY_LIMIT),
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "neena.asgi:application", "--config", "gunicorn.conf.py"],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                if exchange(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not answer"
            time.sleep(0.1)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def assert_json_error(answer: tuple[int, dict[str, str], bytes], status: int, code: str) -> None:
    got_status, headers, body = answer
    assert got_status == status, body
    assert headers["content-type"] == "application/json"
    payload = json.loads(body)
    assert payload["code"] == code
    assert isinstance(payload["detail"], str)
    assert payload["detail"]


def test_request_line_too_long_is_json_414(server_port):
    request = b"GET /api/v1/" + b"a" * 5000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

    assert_json_error(exchange(server_port, request), 414, "uri_too_long")


def test_header_too_large_is_json_431(server_port):
    request = b"GET /api/v1/users/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"

    assert_json_error(exchange(server_port, request), 431, "header_too_large")


def test_too_many_headers_is_json_431(server_port):
    fields = b"".join(b"X-Field-%d: x\r\n" % number for number in range(150))
    request = b"GET /api/v1/users/ HTTP/1.1\r\nHost: 127.0.0.1\r\n" + fields + b"\r\n"

    assert_json_error(exchange(server_port, request), 431, "header_too_large")


@pytest.mark.parametrize(
    "request_bytes",
    [b"NOT HTTP AT ALL\r\n\r\n", b"GET /api/v1/users/ HTTP/1.1\r\nHost: 127.0.0.1\r\nNo colon here\r\n\r\n"],
    ids=["request-line", "header-line"],
)
def test_malformed_request_is_json_400(server_port, request_bytes):
    assert_json_error(exchange(server_port, request_bytes), 400, "bad_request")


def test_declared_body_too_large_is_json_413_before_reading_it(server_port):
    request = (
        b"POST /api/v1/flow_requests HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % (BODY_LIMIT + 1)
    )

    assert_json_error(exchange(server_port, request), 413, "request_too_large")


def test_chunked_body_too_large_is_json_413(server_port):
    chunk = b"x" * 400
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5))
    request = (
        b"POST /api/v1/flow_requests HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks + b"0\r\n\r\n"
    )

    assert_json_error(exchange(server_port, request), 413, "request_too_large")


def test_bad_host_is_json_400(server_port):
    request = b"GET /api/v1/users/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"

    assert_json_error(exchange(server_port, request), 400, "bad_host")


def test_a_token_in_the_url_is_refused_and_logged_nowhere(server_port, server_log):
    secret = "neena_leaked-in-the-url-0123456789"
    request = (
        b"GET /api/v1/users/?access_token=%s&x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nReferer: http://127.0.0.1/?token=%s"
        b"\r\nX-Request-ID: query-token-check\r\nConnection: close\r\n\r\n" % (secret.encode(), secret.encode())
    )

    assert_json_error(exchange(server_port, request), 401, "token_in_query")

    deadline = time.monotonic() + 10
    while True:
        output = server_log.read_text(errors="replace")
        access_lines = [line for line in output.splitlines() if line.endswith(" query-token-check") and '"GET' in line]
        if access_lines:
            break
        assert time.monotonic() < deadline, output[-3000:]
        time.sleep(0.1)
    assert '"GET /api/v1/users/" 401 ' in access_lines[0]
    assert secret not in output
    assert "access_token" not in output
