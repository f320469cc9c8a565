"""The egress guard (``apps/integrations/egress.py``): the address policy, the allow-list, the operator's trust, and the
httpx transport that connects to the address it checked, against real servers on 127.0.0.1.

No test traffic leaves 127.0.0.1: the tests that name other addresses either are refused before connecting or go
through ``rebinding_resolver``, whose ``socket.create_connection`` refuses anything but 127.0.0.1.
"""

import ipaddress
import socket

import httpx
import pytest
from django.test import override_settings

from apps.credentials.services.credentials import credential_upsert
from apps.integrations import egress
from apps.integrations.egress import EgressRefusedError
from apps.integrations.execution import TransientTaskError
from apps.runs.models import TaskRun
from tests.fakes.http_server import FakeHTTPService
from tests.fakes.zendesk import AGENT_EMAIL, API_TOKEN
from tests.integrations.connectors.steps import run_one_step
from tests.integrations.egress_helpers import rebinding_resolver


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


@pytest.fixture
def _no_connections(monkeypatch):
    """Any attempt to open a connection fails the test: a refusal must come before the connection."""

    def refuse(*args, **kwargs):
        raise AssertionError("a connection was opened to a target that should have been refused")

    monkeypatch.setattr(socket, "create_connection", refuse)


def _resolving(monkeypatch, names: dict[str, list[str]]) -> None:
    """Makes the given host names resolve to the given addresses; other names resolve normally."""
    real = socket.getaddrinfo

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if host in names:
            family = {4: socket.AF_INET, 6: socket.AF_INET6}
            return [
                (family[6 if ":" in address else 4], socket.SOCK_STREAM, 6, "", (address, port))
                for address in names[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)


# --- The address policy -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address, problem",
    [
        ("93.184.216.34", ""),
        ("2606:4700::1111", ""),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.0.1", "private"),
        ("fc00::1", "private"),  # unique local
        ("fec0::1", "site-local"),
        ("169.254.10.1", "link-local"),
        ("fe80::1", "link-local"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 (an address being judged, not one to bind to)
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
        ("192.0.2.1", "private"),  # documentation range
        # IPv4 carried in IPv6 is judged by that IPv4 address: where a connection to it ends up.
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("::ffff:93.184.216.34", ""),
        ("::7f00:1", "loopback"),  # IPv4-compatible ::127.0.0.1
        ("::a00:1", "private"),  # IPv4-compatible ::10.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("64:ff9b::5db8:d822", ""),  # NAT64 of 93.184.216.34
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::", "cloud metadata"),  # 6to4 of 169.254.169.254
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),  # Teredo, client 127.0.0.1
    ],
)
def test_address_problem(address, problem):
    assert egress.address_problem(ipaddress.ip_address(address)) == problem


@override_settings(NEENA_HTTP_ALLOWLIST=["Models.Internal.", "10.0.0.5", "::1"])
def test_the_allowlist_matches_names_exactly_and_literal_ips_in_any_spelling():
    assert egress.allow_listed("models.internal")
    assert egress.allow_listed("MODELS.internal.")
    assert not egress.allow_listed("gpu.models.internal")  # no wildcards
    assert egress.allow_listed("10.0.0.5")
    assert egress.allow_listed("[0:0::1]")
    assert not egress.allow_listed("10.0.0.6")


@override_settings(NEENA_HTTP_ALLOWLIST=["10.0.0.5"])
def test_a_name_resolving_to_an_allow_listed_ip_is_not_allowed_by_it(monkeypatch):
    _resolving(monkeypatch, {"sneaky.example.com": ["10.0.0.5"]})

    with pytest.raises(EgressRefusedError, match="private"):
        egress.checked_addresses("sneaky.example.com", 80)
    assert egress.checked_addresses("10.0.0.5", 80) == [ipaddress.ip_address("10.0.0.5")]


def test_every_address_is_checked(monkeypatch):
    _resolving(monkeypatch, {"mixed.example.com": ["93.184.216.34", "10.0.0.7"], "public.example.com": ["1.1.1.1"]})

    with pytest.raises(EgressRefusedError, match=r"mixed\.example\.com: it resolves to a private address"):
        egress.checked_addresses("mixed.example.com", 443)
    assert egress.checked_addresses("public.example.com", 443) == [ipaddress.ip_address("1.1.1.1")]


@pytest.mark.parametrize(
    "host, problem",
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("[::1]", "::1 is a loopback address"),
        ("169.254.169.254", "169.254.169.254 is a cloud metadata address"),
        ("localhost", "localhost is a loopback name"),
        ("api.localhost", "api.localhost is a loopback name"),
        ("10.0.0.5", ""),  # allow-listed
        ("intranet.example.com", ""),  # a name: only checked when connecting
        ("93.184.216.34", ""),
    ],
)
@override_settings(NEENA_HTTP_ALLOWLIST=["10.0.0.5"])
def test_literal_host_problem_needs_no_lookup(host, problem, _no_connections, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: pytest.fail("a name was looked up"))

    assert egress.literal_host_problem(host) == problem


# --- The transport: connect-time checks ---------------------------------------------------------------------------


@pytest.mark.usefixtures("_no_connections")
@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/", "http://localhost/", "http://[::1]/", "http://10.0.0.1/"])
def test_an_untrusted_internal_url_is_refused_before_connecting(url):
    with pytest.raises(EgressRefusedError, match="Refused to call") as refused:
        egress.request("GET", url)

    assert not isinstance(refused.value, TransientTaskError)


def test_the_operators_origin_is_trusted_and_nothing_else(service, other_service):
    """Trust is for the trusted URL's host and port alone: the same process, and a redirect from the trusted service,
    still cannot reach another internal origin."""
    service.reply("hello")
    service.reply("", status=302, headers={"Location": f"{other_service.base_url}/inside"})

    assert egress.request("GET", f"{service.base_url}/a", trusted=True).text == "hello"
    with pytest.raises(EgressRefusedError, match="loopback"):
        egress.request("GET", f"{other_service.base_url}/b")
    with (
        egress.client(trusted_urls=[service.base_url], follow_redirects=True) as client,
        pytest.raises(EgressRefusedError, match="loopback"),
    ):
        client.get(f"{service.base_url}/c")

    assert [request.path for request in service.requests] == ["/a", "/c"]
    assert other_service.requests == []


@override_settings(NEENA_HTTP_ALLOWLIST=["169.254.169.254"])
@pytest.mark.usefixtures("_no_connections")
def test_cloud_metadata_is_refused_even_when_trusted_or_allow_listed():
    with pytest.raises(EgressRefusedError, match="cloud metadata"):
        egress.request("GET", "http://169.254.169.254/latest/meta-data/", trusted=True)
    with pytest.raises(EgressRefusedError, match="cloud metadata"):
        egress.request("GET", "http://169.254.169.254/latest/meta-data/")


def test_a_name_rebound_to_loopback_after_the_check_never_reaches_it(service, monkeypatch):
    """DNS rebinding: the first answer is public, every later one 127.0.0.1. The guard connects to the address it
    checked (refused here: no test traffic leaves 127.0.0.1), and the service on 127.0.0.1 hears nothing."""
    lookups, connections = rebinding_resolver(monkeypatch, "svc.rebind.test", first=["93.184.216.34"])

    with pytest.raises(httpx.ConnectError):
        egress.request("GET", f"http://svc.rebind.test:{service.port}/secret")

    assert connections == [("93.184.216.34", service.port)]
    assert lookups == ["svc.rebind.test"]
    assert service.requests == []


@override_settings(NEENA_HTTP_ALLOWLIST=["svc.test"])
def test_the_name_is_kept_for_the_host_header_and_the_next_address_is_tried(service, monkeypatch):
    """svc.test answers ::1 first (nothing listens there) and then 127.0.0.1: the guard tries the next checked
    address, and the request still names svc.test."""
    _resolving(monkeypatch, {"svc.test": ["::1", "127.0.0.1"]})
    service.reply("found")

    response = egress.request("GET", f"http://svc.test:{service.port}/where")

    assert response.text == "found"
    [received] = service.requests
    assert (received.path, received.header("Host")) == ("/where", f"svc.test:{service.port}")


@pytest.mark.parametrize("errno", [socket.EAI_NONAME, socket.EAI_AGAIN])
def test_a_name_that_does_not_resolve_is_a_connection_error(monkeypatch, errno):
    def unresolvable(host, *args, **kwargs):
        raise socket.gaierror(errno, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unresolvable)

    with pytest.raises(httpx.ConnectError, match="could not be resolved"):
        egress.request("GET", "https://nowhere.example.com/", trusted=True)


# --- A user's address through the engine --------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("_no_connections")
@override_settings(NEENA_ZENDESK_BASE_URL="", NEENA_HTTP_ALLOWLIST=[])
def test_a_zendesk_subdomain_resolving_to_loopback_fails_the_step(owner, organization, monkeypatch):
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: None)
    _resolving(monkeypatch, {"acme.zendesk.com": ["127.0.0.1"]})
    credential_upsert(
        user=owner,
        integration_short_name="zendesk",
        api_key=API_TOKEN,
        config={"email": AGENT_EMAIL, "subdomain": "acme"},
    )

    task_run = run_one_step(owner, organization, "Get Zendesk Ticket", ticket_id=42)

    assert task_run.status == TaskRun.Status.FAILED
    assert task_run.error.startswith("Refused to call acme.zendesk.com: it resolves to a loopback address.")
