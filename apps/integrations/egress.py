"""Outbound connections: one guard against server-side request forgery, at the socket, for every integration call.

Every connection Neena opens to an outside service goes through ``checked_addresses`` right before the socket
connects: the connectors' HTTP calls and the OpenAI-compatible client (``client``/``request``, an httpx transport
whose network backend is the guard, so every redirect hop and every new pooled connection is checked too), the
generic ``http`` task (the same transport) and the SMTP session (``connect``). The host is resolved once, every
address it resolves to is checked, and the socket connects to a checked address itself: the name is never resolved
a second time, so a DNS answer that changes between the check and the connection (DNS rebinding) cannot move it.
Only the socket layer is replaced: TLS still sends the original host name as SNI and checks the certificate for it,
and HTTP still sends it as ``Host``.

Refused: loopback, private (RFC 1918, unique-local IPv6, site-local), link-local, multicast, reserved, unspecified and
other non-global addresses (carrier-grade NAT, documentation ranges), with IPv4 carried in IPv6 (IPv4-mapped,
IPv4-compatible, NAT64 ``64:ff9b::/96``, 6to4, Teredo) judged by that IPv4 address. Allowed anyway:

- a host in ``NEENA_HTTP_ALLOWLIST``: a host name matched exactly (case and a final dot aside; no wildcards, no
  ports), or an IP address matched when the URL or SMTP host names that IP literally (any spelling of it). A name
  that merely resolves to a listed IP is not allowed by it.
- an origin the operator chose (``trusted``): a base URL from the settings (``NEENA_SLACK_BASE_URL``,
  ``NEENA_LLM_BASE_URL``, ...) or the connector's own built-in default. The trust is for that
  host and port alone, in that call: a redirect to another origin, or a URL a user gave (an LLM credential's
  ``base_url``, a Zendesk subdomain, an SMTP host, an ``http`` task's URL), is checked.

Never allowed, whatever the allow-list or the trust says: the cloud metadata services (169.254.169.254 and AWS's
fd00:ec2::254), which hand out the host's own cloud credentials.

A refusal is ``EgressRefusedError``, a ``TaskError``: the step fails with its message and is not retried (the address
will not become public by waiting). It passes through httpx, openai and smtplib unwrapped. A name that does not
resolve is a connection error (httpx's ``ConnectError``, an ``OSError`` for SMTP), as it was before the guard.
Environment proxies (``HTTP_PROXY`` and the like) are not used (a client given its own transport reads none): through a
proxy the guard would check the proxy's address, not the target's.
"""

import ipaddress
import socket
import ssl
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx
from django.conf import settings

from apps.integrations.execution import TaskError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) as a connection sees it: the host in lower case, without a final dot; the scheme's port when unsaid.
Origin = tuple[str, int]

METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# What httpx would use when given no transport (limits.DEFAULT_LIMITS), so calls behave as before the guard.
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)


class EgressRefusedError(TaskError):
    """A connection the address policy refuses: a permanent step failure, never retried."""


# --- The policy --------------------------------------------------------------------------------------------------


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo client), which
    is where a connection to it ends up; None when it carries none."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if (address in IPV4_COMPATIBLE and int(address) > 1) or address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def address_problem(address: Address) -> str:
    """Why the address must not be connected to ('cloud metadata', 'loopback', 'private', ...), or '' when it is
    public. An IPv6 address carrying an IPv4 address is judged by that IPv4 address."""
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    embedded = embedded_ipv4(address)
    if embedded is not None:
        return address_problem(embedded)
    for problem, flagged in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("site-local", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
        ("non-public", not address.is_global),
    ):
        if flagged:
            return problem
    return ""


def host_key(host: str) -> str:
    """The host as the allow-list and the trusted origins compare it: lower case, no final dot, no IPv6 brackets."""
    return host.strip().strip("[]").rstrip(".").lower()


def allow_listed(host: str) -> bool:
    """Whether the host is in NEENA_HTTP_ALLOWLIST: by name exactly, or as a literal IP in any spelling of it."""
    key = host_key(host)
    entries = {host_key(str(entry)) for entry in settings.NEENA_HTTP_ALLOWLIST if str(entry).strip()}
    if key in entries:
        return True
    literal = _literal_ip(key)
    return literal is not None and literal in {_literal_ip(entry) for entry in entries}


def _literal_ip(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def resolve(host: str, port: int) -> list[Address]:
    """Every address the host resolves to, in the resolver's order, each once; ``socket.gaierror`` (an OSError)
    when it does not resolve."""
    resolved = socket.getaddrinfo(host_key(host), port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in resolved))
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, f"{host} resolves to no address")
    return addresses


def checked_addresses(host: str, port: int, *, trusted: bool = False) -> list[Address]:
    """The addresses to connect to for ``host``: resolved once here, every one checked. EgressRefusedError when any is a
    metadata address, or any is not public and the host is neither ``trusted`` nor allow-listed."""
    addresses = resolve(host, port)
    name = host_key(host)
    for address in addresses:
        if address_problem(address) == "cloud metadata":
            raise EgressRefusedError(
                f"Refused to call {name}: it resolves to the cloud metadata address {address}, which is never "
                "reachable from integrations."
            )
    if trusted or allow_listed(name):
        return addresses
    for address in addresses:
        problem = address_problem(address)
        if problem:
            raise EgressRefusedError(
                f"Refused to call {name}: it resolves to a {problem} address. Internal targets are only reachable "
                "when their host is in NEENA_HTTP_ALLOWLIST."
            )
    return addresses


def literal_host_problem(host: str) -> str:
    """For an early check without any DNS lookup (saving a credential): why the host, when it is an IP literal or a
    ``localhost`` name that the policy refuses, cannot be reached; '' otherwise. Names are only checked when
    connecting."""
    key = host_key(host)
    if allow_listed(key):
        return ""
    if key == "localhost" or key.endswith(".localhost"):
        return f"{key} is a loopback name"
    literal = _literal_ip(key)
    problem = address_problem(literal) if literal is not None else ""
    return f"{key} is a {problem} address" if problem else ""


def url_origin(url: str | httpx.URL) -> Origin | None:
    """The (host, port) a URL connects to, or None when it is not an http(s) URL with a host."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return None
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        return None
    return host_key(parsed.raw_host.decode("ascii")), parsed.port or (443 if parsed.scheme == "https" else 80)


# --- Sockets -----------------------------------------------------------------------------------------------------


def _each_address(host: str, port: int, *, trusted: bool) -> Iterator[str]:
    for address in checked_addresses(host, port, trusted=trusted):
        yield str(address)


def connect(host: str, port: int, *, timeout: float | None, trusted: bool = False) -> socket.socket:
    """A TCP socket to a checked address of ``host`` (the next address when one cannot be reached), for protocols
    other than HTTP (SMTP). Raises EgressRefusedError, or OSError as ``socket.create_connection`` does."""
    *others, last = _each_address(host, port, trusted=trusted)
    for address in others:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError:
            continue  # nothing was sent: the next address may answer
    return socket.create_connection((last, port), timeout)


class GuardedNetworkBackend(httpcore.NetworkBackend):
    """httpcore's socket layer with the policy in front: each connection goes to a checked address of its host.

    httpcore hands the URL's host to ``connect_tcp`` and, for https, the same host to ``start_tls`` as the server
    name: connecting to the address while TLS and the Host header keep the name is what pins without re-resolving.
    """

    def __init__(self, *, trusted: frozenset[Origin] = frozenset()) -> None:
        self._inner = httpcore.SyncBackend()
        self._trusted = trusted

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = list(_each_address(host, port, trusted=(host_key(host), port) in self._trusted))
        except OSError as error:  # the name does not resolve: a connection error, as httpcore reports it
            raise httpcore.ConnectError(f"{host} could not be resolved: {error}") from error
        *others, last = addresses
        for address in others:
            try:
                return self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError:
                continue  # nothing was sent: the next address may answer
        return self._inner.connect_tcp(last, port, timeout, local_address, socket_options)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


# --- HTTP --------------------------------------------------------------------------------------------------------


def tls_context() -> ssl.SSLContext:
    """The TLS settings for HTTPS calls: httpx's own (certifi's CAs, or SSL_CERT_FILE/SSL_CERT_DIR), host names
    checked. Tests replace it to trust their own certificate authority."""
    return httpx.create_ssl_context()


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with ``GuardedNetworkBackend`` under its connection pool.

    httpx's constructor takes no network backend, so the pool it builds is replaced by one built the same way with
    the guard plugged in (no proxy: see the module docstring).
    """

    def __init__(self, *, trusted: frozenset[Origin] = frozenset()) -> None:
        context = tls_context()
        super().__init__(verify=context, limits=DEFAULT_LIMITS)
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=DEFAULT_LIMITS.max_connections,
            max_keepalive_connections=DEFAULT_LIMITS.max_keepalive_connections,
            keepalive_expiry=DEFAULT_LIMITS.keepalive_expiry,
            network_backend=GuardedNetworkBackend(trusted=trusted),
        )


def client(*, trusted_urls: Iterable[str] = (), **options: Any) -> httpx.Client:
    """An httpx client whose every connection goes through the guard; ``trusted_urls`` are URLs the operator chose
    (settings, built-in defaults), whose origins alone skip the address check. Environment proxies are ignored."""
    trusted = frozenset(origin for origin in map(url_origin, trusted_urls) if origin is not None)
    return httpx.Client(transport=GuardedTransport(trusted=trusted), trust_env=False, **options)


def request(method: str, url: str, *, trusted: bool = False, **options: Any) -> httpx.Response:
    """``httpx.request`` through the guard: one call on a client of its own. ``trusted`` when the URL's origin is the
    operator's choice (a setting or a built-in default), not a user's."""
    with client(trusted_urls=[url] if trusted else []) as http:
        return http.request(method, url, **options)
