"""The ``http`` connector against a fake service on 127.0.0.1: exact requests, answers, redirects and SSRF refusals.

Refused targets are refused before any connection: ``_no_connections`` makes any attempt to open a socket fail the
test, and ``_loopback_only`` fails any connection to an address other than 127.0.0.1, so no traffic ever goes to
10.0.0.1, 169.254.169.254 or anywhere else, even if the connector were broken.
"""

import socket
import uuid

import httpx
import pytest
from django.test import override_settings

from apps.integrations import egress
from apps.integrations.connectors import http as connector
from apps.integrations.connectors.http import http_get, http_request
from apps.integrations.execution import TaskContext, TaskError, TransientTaskError
from tests.fakes.http_server import FakeHTTPService
from tests.fakes.tls import self_signed_certificate

LOCAL = override_settings(NEENA_HTTP_ALLOWLIST=["127.0.0.1"])
OUTPUTS = {"status_code", "headers", "body"}


def _context(time_limit: float = 10.0) -> TaskContext:
    return TaskContext(
        organization_id=uuid.uuid4(),
        flow_run_id=uuid.uuid4(),
        flow_request_id=uuid.uuid4(),
        task_run_id=uuid.uuid4(),
        idempotency_key="step:0",
        integration_entity=None,
        time_limit_seconds=time_limit,
    )


@pytest.fixture
def service():
    fake = FakeHTTPService()
    yield fake
    fake.stop()


@pytest.fixture
def other_service():
    fake = FakeHTTPService()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    """Whatever the connector does, no connection leaves 127.0.0.1: a socket to any other address fails the test."""
    real = socket.create_connection

    def guarded(address, *args, **kwargs):
        assert address[0] == "127.0.0.1", f"a connection was about to go to {address}"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)


@pytest.fixture
def _no_connections(monkeypatch):
    """Any attempt to open a connection fails the test: a refusal must come before the connection."""

    def refuse(*args, **kwargs):
        raise AssertionError("a connection was opened to a target that should have been refused")

    monkeypatch.setattr(socket, "create_connection", refuse)


def _resolving(monkeypatch, names: dict[str, list[str]]) -> list[str]:
    """Makes the given host names resolve to the given addresses (other names resolve normally); returns the log of
    names looked up."""
    real = socket.getaddrinfo
    looked_up: list[str] = []

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if host in names:
            looked_up.append(host)
            family = {4: socket.AF_INET, 6: socket.AF_INET6}
            return [
                (family[6 if ":" in address else 4], socket.SOCK_STREAM, 6, "", (address, port))
                for address in names[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    return looked_up


# --- Allowed calls ----------------------------------------------------------------------------------------------


@LOCAL
def test_get_sends_exactly_the_request_and_returns_json(service):
    service.reply({"id": 42, "status": "shipped"}, headers={"X-Request-Id": "abc"})

    outputs = http_get(
        _context(),
        url=f"{service.base_url}/orders/42?expand=items",
        headers={"Accept": "application/json", "X-Count": 3},
        query={"page": 2, "tag": ["a", "b"]},
    )

    assert set(outputs) == OUTPUTS
    assert outputs["status_code"] == 200
    assert outputs["body"] == {"id": 42, "status": "shipped"}
    assert outputs["headers"]["x-request-id"] == "abc"
    assert outputs["headers"]["content-type"] == "application/json"
    [received] = service.requests
    assert (received.method, received.path, received.body) == ("GET", "/orders/42?expand=items&page=2&tag=a&tag=b", b"")
    assert received.header("Accept") == "application/json"
    assert received.header("X-Count") == "3"
    assert received.header("Host") == f"127.0.0.1:{service.port}"
    assert received.header("User-Agent") == "Neena-HTTP/1.0"


@LOCAL
def test_request_posts_a_json_body_with_its_method(service):
    service.reply({"created": True}, status=201)

    outputs = http_request(
        _context(),
        method="post",
        url=f"{service.base_url}/hooks",
        headers={"Authorization": "Bearer t0k", "Host": "evil.example"},
        body={"event": "shipped", "items": [1, 2]},
    )

    assert outputs == {
        "status_code": 201,
        "headers": outputs["headers"],
        "body": {"created": True},
    }
    [received] = service.requests
    assert (received.method, received.path) == ("POST", "/hooks")
    assert received.json() == {"event": "shipped", "items": [1, 2]}
    assert received.header("Content-Type") == "application/json"
    assert received.header("Authorization") == "Bearer t0k"
    assert received.header("Host") == f"127.0.0.1:{service.port}"  # a caller's Host header is never sent


@LOCAL
@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_request_uses_the_given_method(service, method):
    service.reply("done")

    outputs = http_request(_context(), method=method, url=f"{service.base_url}/things/7")

    assert outputs["body"] == "done"
    assert [(r.method, r.path, r.body) for r in service.requests] == [(method, "/things/7", b"")]


@LOCAL
def test_text_and_false_json_come_back_as_text(service):
    service.reply("<h1>Hello</h1>", content_type="text/html; charset=utf-8")
    service.reply(b"not json", headers={"Content-Type": "application/json"})

    page = http_get(_context(), url=f"{service.base_url}/")
    broken = http_get(_context(), url=f"{service.base_url}/api")

    assert page["body"] == "<h1>Hello</h1>"
    assert broken["body"] == "not json"


@LOCAL
def test_client_errors_are_outputs_not_failures(service):
    service.reply({"message": "no such order"}, status=404)

    outputs = http_get(_context(), url=f"{service.base_url}/orders/9")

    assert (outputs["status_code"], outputs["body"]) == (404, {"message": "no such order"})


@LOCAL
def test_server_errors_and_rate_limits_are_transient(service):
    service.reply("down", status=503)
    service.reply("slow down", status=429, headers={"Retry-After": "7"})

    with pytest.raises(TransientTaskError, match="503") as unavailable:
        http_get(_context(), url=f"{service.base_url}/a")
    with pytest.raises(TransientTaskError, match="429") as limited:
        http_request(_context(), method="POST", url=f"{service.base_url}/b", body={})

    assert unavailable.value.retry_after is None
    assert limited.value.retry_after == 7


@LOCAL
def test_long_bodies_are_cut_at_the_cap(service, monkeypatch):
    monkeypatch.setattr(connector, "MAX_BODY_BYTES", 10)
    service.reply('{"a": "' + "x" * 50 + '"}', content_type="application/json")

    outputs = http_get(_context(), url=service.base_url)

    assert outputs["body"] == '{"a": "xxx'  # cut, so returned as text even though it is JSON


@LOCAL
def test_unreachable_and_slow_targets_are_transient(service):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    service.reply("late", delay=1.0)

    with pytest.raises(TransientTaskError, match="could not be reached"):
        http_get(_context(), url=f"http://127.0.0.1:{port}/")
    with pytest.raises(TransientTaskError, match="in time"):
        http_get(_context(time_limit=0.3), url=service.base_url)


@LOCAL
def test_unsupported_methods_are_refused(service):
    with pytest.raises(TaskError, match="Unsupported HTTP method 'TRACE'"):
        http_request(_context(), method="TRACE", url=service.base_url)

    assert service.requests == []


# --- Redirects --------------------------------------------------------------------------------------------------


@LOCAL
def test_redirects_are_followed_and_303_turns_a_post_into_a_get(service):
    service.reply("", status=303, headers={"Location": "/result?id=5"})
    service.reply({"id": 5})

    outputs = http_request(_context(), method="POST", url=f"{service.base_url}/jobs", body={"run": True})

    assert outputs["body"] == {"id": 5}
    first, second = service.requests
    assert (first.method, first.path, first.json()) == ("POST", "/jobs", {"run": True})
    assert (second.method, second.path, second.body) == ("GET", "/result?id=5", b"")
    assert second.header("Content-Type") is None


@LOCAL
def test_307_keeps_the_method_and_body(service):
    service.reply("", status=307, headers={"Location": f"{service.base_url}/v2/jobs"})
    service.reply({"ok": True}, status=202)

    outputs = http_request(_context(), method="PUT", url=f"{service.base_url}/jobs", body={"n": 1})

    assert outputs["status_code"] == 202
    assert [(r.method, r.path, r.json()) for r in service.requests] == [
        ("PUT", "/jobs", {"n": 1}),
        ("PUT", "/v2/jobs", {"n": 1}),
    ]


@LOCAL
def test_credentials_are_not_carried_to_another_origin(service, other_service):
    service.reply("", status=302, headers={"Location": f"{other_service.base_url}/landing"})
    other_service.reply("welcome")

    outputs = http_get(_context(), url=service.base_url, headers={"Authorization": "Bearer secret", "X-Keep": "1"})

    assert outputs["body"] == "welcome"
    assert service.requests[0].header("Authorization") == "Bearer secret"
    [landed] = other_service.requests
    assert landed.header("Authorization") is None
    assert landed.header("X-Keep") == "1"


@LOCAL
def test_too_many_redirects_fail(service):
    for hop in range(connector.MAX_REDIRECTS + 1):
        service.reply("", status=302, headers={"Location": f"/hop{hop + 1}"})

    with pytest.raises(TaskError, match="Too many redirects"):
        http_get(_context(), url=f"{service.base_url}/hop0")

    assert len(service.requests) == connector.MAX_REDIRECTS + 1


@LOCAL
@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/admin",
        "http://localhost:{port}/",
        "http://[::1]:{port}/",
        "file:///etc/passwd",
    ],
)
def test_a_redirect_to_a_refused_target_is_refused(service, location):
    service.reply("", status=302, headers={"Location": location.format(port=service.port)})

    with pytest.raises(TaskError) as refused:
        http_get(_context(), url=f"{service.base_url}/start")

    assert not isinstance(refused.value, TransientTaskError)
    assert "Refused" in str(refused.value) or "Only http and https" in str(refused.value)
    assert [r.path for r in service.requests] == ["/start"]


# --- Refusals before any connection -----------------------------------------------------------------------------


@pytest.mark.usefixtures("_no_connections")
@pytest.mark.parametrize(
    "url, problem",
    [
        ("http://127.0.0.1:8000/", "loopback"),
        ("http://localhost/", "loopback"),
        ("http://10.0.0.1/", "private"),
        ("http://192.168.1.20:8080/admin", "private"),
        ("http://169.254.10.1/", "link-local"),
        ("http://[::1]/", "loopback"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[::ffff:10.0.0.1]/", "private"),  # IPv4-mapped IPv6
        ("http://2130706433/", "loopback"),  # 127.0.0.1 spelt as one number
        ("http://0.0.0.0/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://100.64.0.1/", "non-public"),  # carrier-grade NAT
    ],
)
def test_internal_targets_are_refused_without_the_allowlist(url, problem):
    with pytest.raises(TaskError, match=f"resolves to a {problem} address") as refused:
        http_get(_context(), url=url)

    assert not isinstance(refused.value, TransientTaskError)
    assert "NEENA_HTTP_ALLOWLIST" in str(refused.value)


@LOCAL
@pytest.mark.usefixtures("_no_connections")
def test_the_allowlist_is_by_host_name_so_localhost_stays_refused():
    with pytest.raises(TaskError, match="Refused to call localhost"):
        http_get(_context(), url="http://localhost:8000/")


@LOCAL
@pytest.mark.usefixtures("_no_connections")
@pytest.mark.parametrize("url", ["http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/"])
def test_allowing_one_internal_address_allows_no_other(url):
    with pytest.raises(TaskError, match="Refused"):
        http_request(_context(), method="POST", url=url, body={"x": 1})


@pytest.mark.usefixtures("_no_connections")
@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
    ],
)
def test_cloud_metadata_is_refused_even_when_allow_listed(url):
    host = httpx.URL(url).host
    with override_settings(NEENA_HTTP_ALLOWLIST=[host]), pytest.raises(TaskError, match="cloud metadata") as refused:
        http_get(_context(), url=url)

    assert not isinstance(refused.value, TransientTaskError)


@pytest.mark.usefixtures("_no_connections")
@pytest.mark.parametrize("url", ["ftp://example.com/file", "file:///etc/passwd", "gopher://127.0.0.1:70/"])
def test_only_http_and_https_are_allowed(url):
    with pytest.raises(TaskError, match="Only http and https"):
        http_get(_context(), url=url)


@pytest.mark.usefixtures("_no_connections")
def test_a_public_name_resolving_to_a_private_address_is_refused(monkeypatch):
    looked_up = _resolving(
        monkeypatch, {"intranet.example.com": ["10.1.2.3"], "mixed.example.com": ["93.184.216.34", "10.0.0.7"]}
    )

    with pytest.raises(TaskError, match=r"intranet\.example\.com: it resolves to a private address"):
        http_get(_context(), url="https://intranet.example.com/")
    with pytest.raises(TaskError, match=r"mixed\.example\.com: it resolves to a private address"):
        http_get(_context(), url="https://mixed.example.com/")  # any internal address is enough

    assert looked_up == ["intranet.example.com", "mixed.example.com"]


@pytest.mark.usefixtures("_no_connections")
@pytest.mark.parametrize(
    "errno, expected", [(socket.EAI_NONAME, "does not resolve"), (socket.EAI_AGAIN, "could not be reached")]
)
def test_a_host_that_does_not_resolve_fails_and_a_resolver_hiccup_is_retried(monkeypatch, errno, expected):
    def unresolvable(host, *args, **kwargs):
        raise socket.gaierror(errno, "resolver says no")

    monkeypatch.setattr(socket, "getaddrinfo", unresolvable)

    with pytest.raises(TaskError, match=expected) as failed:
        http_get(_context(), url="https://nowhere.example.com/")

    assert isinstance(failed.value, TransientTaskError) == (errno == socket.EAI_AGAIN)


# --- Pinning ----------------------------------------------------------------------------------------------------


@override_settings(NEENA_HTTP_ALLOWLIST=["service.test"])
def test_the_connection_goes_to_the_checked_address_without_resolving_again(service, monkeypatch):
    """DNS rebinding: a second look-up could answer differently, so there is none; the request keeps its Host."""
    looked_up = _resolving(monkeypatch, {"service.test": ["127.0.0.1"]})
    real = socket.getaddrinfo

    def once(host, *args, **kwargs):
        if host == "service.test" and looked_up:
            raise AssertionError("service.test was resolved a second time")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", once)
    service.reply({"pinned": True})

    outputs = http_get(_context(), url=f"http://service.test:{service.port}/ping")

    assert outputs["body"] == {"pinned": True}
    assert looked_up == ["service.test"]
    [received] = service.requests
    assert (received.path, received.header("Host")) == ("/ping", f"service.test:{service.port}")


@pytest.fixture
def tls_service(monkeypatch, tmp_path, request):
    """An https fake whose certificate is for ``request.param`` (a host name), trusted by the connector's client;
    service.test resolves to 127.0.0.1 and is allow-listed. Yields the service and the SNI names it was sent."""
    certificate = self_signed_certificate(tmp_path, [request.param])
    server_tls = certificate.server_context()
    server_names: list[str | None] = []
    server_tls.sni_callback = lambda connection, name, context: server_names.append(name)
    service = FakeHTTPService(tls=server_tls)
    monkeypatch.setattr(egress, "tls_context", certificate.client_context)
    _resolving(monkeypatch, {"service.test": ["127.0.0.1"]})
    with override_settings(NEENA_HTTP_ALLOWLIST=["service.test"]):
        yield service, server_names
    service.stop()


@pytest.mark.parametrize("tls_service", ["service.test"], indirect=True)
def test_https_keeps_the_host_name_for_sni_and_the_certificate_check(tls_service):
    """Pinned to 127.0.0.1, the TLS handshake still names service.test and its certificate is checked for it."""
    service, server_names = tls_service
    service.reply({"secure": True})

    outputs = http_get(_context(), url=f"https://service.test:{service.port}/secure")

    assert outputs["body"] == {"secure": True}
    assert service.requests[0].header("Host") == f"service.test:{service.port}"
    assert server_names == ["service.test"]


@pytest.mark.parametrize("tls_service", ["elsewhere.test"], indirect=True)
def test_a_certificate_for_another_name_is_refused(tls_service):
    service, server_names = tls_service

    with pytest.raises(TaskError, match=r"TLS certificate of service\.test is not valid") as refused:
        http_get(_context(), url=f"https://service.test:{service.port}/secure")

    assert not isinstance(refused.value, TransientTaskError)
    assert (service.requests, server_names) == ([], ["service.test"])


# --- Declarations -----------------------------------------------------------------------------------------------


def test_declarations_match_the_implementations():
    tasks = {task.python_method_name: task for task in connector.CONNECTOR.tasks}

    assert (connector.CONNECTOR.short_name, connector.CONNECTOR.auth_type) == ("http", "none")
    assert [p.name for p in tasks["http_get"].parameters] == ["url", "headers", "query"]
    assert [p.name for p in tasks["http_request"].parameters] == ["method", "url", "headers", "query", "body"]
    assert {p.name for p in tasks["http_get"].outputs} == OUTPUTS
    assert (tasks["http_get"].side_effect, tasks["http_request"].side_effect) == (False, True)
