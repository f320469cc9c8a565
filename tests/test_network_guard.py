"""The network guard (``tests/network_guard.py``): an outbound connection inside a transaction of the code under test
is found, named by its address and its block, and fails the test; the same connection outside one, or to the
database or Redis, is not."""

import os
import smtplib
import socket
import subprocess
import sys
import textwrap
import threading
import urllib.request

import httpx
import pytest
import redis
from django.db import connection, transaction

from apps.accounts.models import User
from tests import network_guard, workers
from tests.fakes.http_server import FakeHTTPService


@pytest.fixture
def service():
    fake = FakeHTTPService()
    yield fake
    fake.stop()


@transaction.atomic
def _fetch_in_a_transaction(url: str) -> int:
    return httpx.get(url).status_code


def test_a_call_inside_atomic_is_found_with_its_address_and_block(db, service):
    with network_guard.violations_caught() as caught, transaction.atomic():
        httpx.get(service.base_url)

    (violation,) = caught
    assert violation.address == f"127.0.0.1:{service.port}"
    assert violation.database == "default"
    (block,) = violation.blocks
    assert block.startswith("transaction.atomic() at tests/test_network_guard.py:")
    assert block.endswith("in test_a_call_inside_atomic_is_found_with_its_address_and_block")
    assert any("tests/test_network_guard.py" in line for line in violation.stack)
    message = violation.message()
    assert f"Outbound connection to 127.0.0.1:{service.port}" in message
    assert "'default' was inside 1 atomic block(s)" in message


def test_a_decorated_service_is_named_and_nested_blocks_listed_outermost_first(db, service):
    with network_guard.violations_caught() as caught, transaction.atomic():
        _fetch_in_a_transaction(service.base_url)

    (violation,) = caught
    assert len(violation.blocks) == 2
    assert violation.blocks[0].startswith("transaction.atomic() at tests/test_network_guard.py:")
    assert violation.blocks[1] == "@transaction.atomic on tests.test_network_guard._fetch_in_a_transaction"


def test_a_call_under_a_row_lock_is_found(owner, service):
    with network_guard.violations_caught() as caught, transaction.atomic():
        User.objects.select_for_update().get(id=owner.id)
        httpx.get(service.base_url)
    assert [violation.address for violation in caught] == [f"127.0.0.1:{service.port}"]


def test_the_transaction_pytest_django_wraps_a_db_test_in_is_not_counted(db, service):
    assert connection.in_atomic_block  # the test's own wrapping transaction
    with network_guard.violations_caught() as caught:
        httpx.get(service.base_url)
        with transaction.atomic():
            pass
        httpx.get(service.base_url)
    assert caught == []


@pytest.mark.django_db(transaction=True)
def test_a_transactional_test_counts_every_block_the_code_opens(service):
    assert not connection.in_atomic_block
    with network_guard.violations_caught() as caught:
        httpx.get(service.base_url)
        with transaction.atomic():
            httpx.get(service.base_url)
    assert len(caught) == 1


def test_every_client_is_caught_at_the_socket(db, service):
    """httpx, urllib and smtplib (and so every client built on them) connect through the same socket call."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    threading.Thread(target=lambda: listener.accept()[0].sendall(b"220 fake ESMTP\r\n"), daemon=True).start()
    with network_guard.violations_caught() as caught, transaction.atomic():
        urllib.request.urlopen(service.base_url, timeout=5).close()  # noqa: S310 - a fixed loopback URL
        smtp = smtplib.SMTP("127.0.0.1", port, timeout=5)
        smtp.close()
    listener.close()
    assert [violation.address for violation in caught] == [f"127.0.0.1:{service.port}", f"127.0.0.1:{port}"]


def test_the_database_and_redis_are_not_outbound(db, redis_url):
    with network_guard.violations_caught() as caught, transaction.atomic():
        redis.Redis.from_url(redis_url).ping()
        User.objects.count()
    assert caught == []


@pytest.mark.django_db(transaction=True)
def test_a_thread_of_the_code_under_test_is_watched_on_its_own_connection(service):
    """Django's connections are per thread: a thread's own block counts, the test thread's state does not."""

    def in_a_thread():
        with transaction.atomic():
            httpx.get(service.base_url)
        connection.close()

    with network_guard.violations_caught() as caught:
        thread = threading.Thread(target=in_a_thread)
        thread.start()
        thread.join()
    assert len(caught) == 1


@pytest.mark.django_db(transaction=True)
def test_a_worker_process_reports_to_the_test_process(tmp_path, service):
    """What a worker finds (``tests/celery_main.py`` installs the guard from the environment) is written to the report
    directory and read back by the test process."""
    script = textwrap.dedent(
        f"""
        from tests import network_guard
        network_guard.install_from_environment()
        import django
        django.setup()
        import httpx
        from django.db import transaction
        httpx.get("{service.base_url}")  # outside: not reported
        with transaction.atomic():
            httpx.get("{service.base_url}")
        """
    )
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "neena.settings.test",
        "DATABASE_URL": workers.test_database_url(),
        network_guard.REPORT_DIR_VARIABLE: str(tmp_path),
    }
    subprocess.run([sys.executable, "-c", script], cwd=workers.ROOT, env=environment, check=True, timeout=60)

    (violation,) = network_guard.take(tmp_path)
    assert violation.address == f"127.0.0.1:{service.port}"
    assert violation.process.endswith("(worker)")
    assert violation.blocks[0].startswith("transaction.atomic() at <string>:")
    assert network_guard.take(tmp_path) == []  # read once


INNER_TESTS = """
import httpx
import pytest
from django.db import transaction

from tests.fakes.http_server import FakeHTTPService


@pytest.fixture
def service():
    fake = FakeHTTPService()
    yield fake
    fake.stop()


def test_calls_inside_a_transaction(db, service):
    with transaction.atomic():
        httpx.get(service.base_url)


def test_calls_outside_a_transaction(db, service):
    httpx.get(service.base_url)
    with transaction.atomic():
        pass


@pytest.mark.network_in_transaction_allowed("the guard's own test")
def test_is_allowed_to(db, service):
    with transaction.atomic():
        httpx.get(service.base_url)
"""


def test_the_suite_fails_a_test_that_calls_out_inside_a_transaction(tmp_path):
    """The suite's own hooks (``tests/conftest.py``, imported by the inner run's conftest) on three tests: the one
    calling out inside ``atomic()`` fails with the guard's message; the one calling outside and the allowed one
    pass."""
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    environment = {**os.environ, "PYTHONPATH": str(workers.ROOT)}
    environment.pop(network_guard.REPORT_DIR_VARIABLE, None)
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-c",
            str(workers.ROOT / "pyproject.toml"),
            "--rootdir",
            str(tmp_path),
            "-q",
            str(tmp_path / "test_inner.py"),
        ],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = finished.stdout + finished.stderr
    assert finished.returncode == 1, output
    assert "1 failed, 2 passed" in output, output
    assert "FAILED test_inner.py::test_calls_inside_a_transaction" in output, output
    assert "Outbound connection to 127.0.0.1:" in output, output
    assert "transaction.atomic() at " in output and "in test_calls_inside_a_transaction" in output, output
