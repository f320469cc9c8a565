"""The ``http`` integration: call any HTTP(S) endpoint a user names, guarded against server-side request forgery.

A URL given by a user must not reach the platform's own network. Before every connection, the first one and each
redirect hop alike, the host is resolved with ``socket.getaddrinfo`` and the request is refused when any address it
resolves to is private, loopback, link-local, reserved, multicast or unspecified (IPv4-mapped, 6to4 and Teredo IPv6
addresses are judged by the IPv4 address they carry), unless the host name, or the literal IP as written, is in
``NEENA_HTTP_ALLOWLIST``. Only ``http`` and ``https`` are allowed, and redirects are followed here, at most
``MAX_REDIRECTS`` of them, never by httpx.

The connection is pinned to the checked address: the request goes to the IP itself, with the original ``Host``
header and, for https, the original name as TLS SNI and certificate hostname (httpx's ``sni_hostname`` extension).
Nothing re-resolves the name between the check and the connection, so a DNS answer that changes in between (DNS
rebinding) cannot redirect the request. Environment proxies are ignored (``trust_env=False``) for the same reason.

Redirects follow browser rules (303, and 301/302 after a POST, continue as a GET without the body); credentials
(Authorization, Cookie) are not carried to another origin, and cookies set by a response are not replayed. When a
host has several addresses, all are checked and the next is tried only if a connection cannot be made.

Answers: 4xx come back as outputs (the caller usually wants the status, e.g. 404 means "not there"); 429 and 5xx
raise ``TransientTaskError`` (with Retry-After), as do network errors and timeouts, so the engine retries them. An
invalid TLS certificate is a ``TaskError``. The body is JSON when the response says so, else text; it is cut at
``MAX_BODY_BYTES`` (and then always text).

Known limits: the name resolution itself has no timeout of its own (the system resolver's applies), and the
allow-list matches host names exactly (no wildcards, no ports).
"""

import contextlib
import ipaddress
import json
import socket
import ssl
import time
from collections.abc import Mapping
from typing import Any

import httpx
from django.conf import settings

from apps.integrations.connectors.base import AuthType, ConnectorSpec, DataType, Param, RetryPolicy, TaskSpec
from apps.integrations.execution import TaskContext, TaskError, TransientTaskError
from apps.integrations.http import retry_after_seconds

# GET is safe to repeat; other methods may change things, and a retry after a lost answer may repeat the change.
READ_RETRY = RetryPolicy(max_retries=3, backoff_seconds=2.0, time_limit_seconds=60)
WRITE_RETRY = RetryPolicy(max_retries=2, backoff_seconds=2.0, time_limit_seconds=60)

# The body comes first: it is the output a following step means by "it" ("fetch the page and summarize it").
RESPONSE_OUTPUTS = (
    Param("body", DataType.JSON, "The response body: parsed JSON when the response is JSON, else its text."),
    Param("status_code", DataType.INT, "The HTTP status code of the final response, e.g. 200 or 404."),
    Param("headers", DataType.DICT, "The response headers, names in lower case."),
)
HEADERS = Param(
    "headers", DataType.DICT, "Request headers by name, e.g. {'Accept': 'application/json'}.", optional=True, default={}
)
QUERY = Param("query", DataType.DICT, "Query string parameters by name, added to the URL.", optional=True, default={})

CONNECTOR = ConnectorSpec(
    name="HTTP",
    short_name="http",
    class_name="HttpIntegration",
    auth_type=AuthType.NONE,
    description="Call any public HTTP or HTTPS endpoint: fetch a web page or JSON API, or send a request to a "
    "web service. Private and internal addresses are refused unless allow-listed.",
    tasks=(
        TaskSpec(
            task_name="HTTP GET Request",
            python_method_name="http_get",
            description="Fetch or get a URL with an HTTP GET request, e.g. download a web page or call a JSON API, "
            "and return its status code, headers and body.",
            parameters=(
                Param("url", DataType.URL, "The http(s) URL to fetch, e.g. 'https://api.example.com/orders/42'."),
                HEADERS,
                QUERY,
            ),
            outputs=RESPONSE_OUTPUTS,
            retry=READ_RETRY,
        ),
        TaskSpec(
            task_name="HTTP Request",
            python_method_name="http_request",
            description="Send or call an HTTP request with any method (POST, PUT, PATCH, DELETE) to a URL, e.g. "
            "post JSON to a web service's API, and return its status code, headers and body.",
            parameters=(
                Param("method", DataType.STRING, "The HTTP method: GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS."),
                Param("url", DataType.URL, "The http(s) URL to call, e.g. 'https://api.example.com/orders'."),
                HEADERS,
                QUERY,
                Param("body", DataType.JSON, "A JSON body to send with the request.", optional=True),
            ),
            outputs=RESPONSE_OUTPUTS,
            side_effect=True,
            retry=WRITE_RETRY,
        ),
    ),
)


# --- Implementations ---------------------------------------------------------------------------------------------

METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
MAX_REDIRECTS = 5
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
# The body kept in the outputs; a longer body is cut there (and then returned as text, even when it is JSON).
MAX_BODY_BYTES = 262_144
USER_AGENT = "Neena-HTTP/1.0"
# Credentials meant for one origin are not carried to another by a redirect.
ORIGIN_BOUND_HEADERS = {"authorization", "cookie", "proxy-authorization"}


def http_get(
    context: TaskContext,
    *,
    url: str,
    headers: dict[str, Any] | None = None,
    query: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A GET request to a public URL; see the module docstring for the address checks and the error mapping."""
    return _send(context, method="GET", url=url, headers=headers or {}, query=query or {}, body=None)


def http_request(
    context: TaskContext,
    *,
    method: str,
    url: str,
    headers: dict[str, Any] | None = None,
    query: dict[str, Any] | None = None,
    body: Any = None,
) -> dict[str, Any]:
    """A request with any common method; ``body`` (when not None) is sent as JSON."""
    verb = method.strip().upper()
    if verb not in METHODS:
        raise TaskError(f"Unsupported HTTP method '{method}': use one of {', '.join(sorted(METHODS))}.")
    return _send(context, method=verb, url=url, headers=headers or {}, query=query or {}, body=body)


def _send(
    context: TaskContext,
    *,
    method: str,
    url: str,
    headers: Mapping[str, Any],
    query: Mapping[str, Any],
    body: Any,
) -> dict[str, Any]:
    """Steps: check the target, send pinned to the checked address, and on a redirect check the next target and go
    again (at most ``MAX_REDIRECTS`` times); 429/5xx raise a transient error, anything else is returned."""
    try:
        target = httpx.URL(url)
        if query:
            target = target.copy_merge_params({str(name): value for name, value in query.items()})
    except (httpx.InvalidURL, TypeError, ValueError) as error:
        raise TaskError(f"'{url}' is not a valid URL: {error}") from error
    request_headers = {
        str(name): str(value) for name, value in headers.items() if str(name).lower() not in {"host", "content-length"}
    }
    if not any(name.lower() == "user-agent" for name in request_headers):
        request_headers["User-Agent"] = USER_AGENT
    deadline = time.monotonic() + context.time_limit_seconds

    with httpx.Client(trust_env=False, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            response, content, cut = _send_pinned(
                client, method=method, url=target, headers=request_headers, body=body, deadline=deadline
            )
            # The client files cookies under the pinned IP, not the host: none is carried to the next hop.
            client.cookies.clear()
            location = response.headers.get("Location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                return _outputs(response, content, cut=cut, host=target.host)
            try:
                next_target = target.join(location)
            except httpx.InvalidURL as error:
                raise TaskError(f"{target.host} redirected to an invalid URL '{location}': {error}") from error
            if _origin(next_target) != _origin(target):
                request_headers = {
                    name: value for name, value in request_headers.items() if name.lower() not in ORIGIN_BOUND_HEADERS
                }
            # As browsers and httpx do: 303 always, and 301/302 after a POST, continue as a GET without the body.
            if (response.status_code == 303 and method != "HEAD") or (
                response.status_code in (301, 302) and method == "POST"
            ):
                method, body = "GET", None
                request_headers = {
                    name: value for name, value in request_headers.items() if name.lower() != "content-type"
                }
            target = next_target
    raise TaskError(f"Too many redirects: more than {MAX_REDIRECTS}, the last to {target.host}{target.path}.")


def _send_pinned(
    client: httpx.Client,
    *,
    method: str,
    url: httpx.URL,
    headers: dict[str, str],
    body: Any,
    deadline: float,
) -> tuple[httpx.Response, bytes, bool]:
    """One request to one checked address of the URL's host (the next one when a connection cannot be made); returns
    the response, its body read up to ``MAX_BODY_BYTES``, and whether the body was longer."""
    addresses = checked_addresses(url)
    host_header = url.netloc.decode("ascii")
    extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
    last_error: Exception | None = None
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        pinned = url.copy_with(host=str(address))
        try:
            with client.stream(
                method,
                pinned,
                headers={**headers, "Host": host_header},
                json=body,
                timeout=remaining,
                extensions=extensions,
            ) as response:
                return response, *_read_capped(response)
        except httpx.ConnectError as error:
            if _is_certificate_error(error):
                raise TaskError(f"The TLS certificate of {url.host} is not valid: {error}") from error
            last_error = error  # nothing was sent: the next address may answer
        except httpx.TimeoutException as error:
            raise TransientTaskError(f"{url.host} did not answer in time: {type(error).__name__}") from error
        except httpx.LocalProtocolError as error:
            raise TaskError(f"The request to {url.host} is malformed: {error}") from error
        except (httpx.NetworkError, httpx.RemoteProtocolError) as error:
            raise TransientTaskError(f"{url.host} could not be reached: {type(error).__name__}: {error}") from error
    if last_error is None:
        raise TransientTaskError(f"{url.host} did not answer within the step's time limit.")
    raise TransientTaskError(f"{url.host} could not be reached: {type(last_error).__name__}: {last_error}")


def checked_addresses(url: httpx.URL) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses the URL's host resolves to, in resolver order; TaskError when the scheme is not http(s), or any
    address is not public and the host is not allow-listed."""
    if url.scheme not in ("http", "https"):
        raise TaskError(f"Only http and https URLs can be called, not '{url.scheme or 'no scheme'}'.")
    host = url.raw_host.decode("ascii").rstrip(".").lower()
    if not host:
        raise TaskError(f"The URL '{url}' names no host.")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        resolved = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        if error.errno == socket.EAI_AGAIN:
            raise TransientTaskError(f"The host {host} could not be resolved right now: {error}") from error
        raise TaskError(f"The host {host} does not resolve: {error}") from error
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in resolved))
    if not addresses:
        raise TaskError(f"The host {host} does not resolve to any address.")
    if _allow_listed(host):
        return addresses
    for address in addresses:
        problem = _non_public(address)
        if problem:
            raise TaskError(
                f"Refused to call {host}: it resolves to a {problem} address. Internal targets are only reachable when "
                "their host is in NEENA_HTTP_ALLOWLIST."
            )
    return addresses


def _allow_listed(host: str) -> bool:
    """Whether the host, by name or as a literal IP (in any spelling of that IP), is in NEENA_HTTP_ALLOWLIST."""
    allowed = {str(entry).strip().rstrip(".").lower() for entry in settings.NEENA_HTTP_ALLOWLIST}
    if host in allowed:
        return True
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return str(literal) in {_normalised_ip(entry) for entry in allowed}


def _normalised_ip(entry: str) -> str:
    try:
        return str(ipaddress.ip_address(entry.strip("[]")))
    except ValueError:
        return entry


def _non_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Why the address must not be called ('private', 'loopback', ...), or '' when it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None:
            return _non_public(embedded)
    for problem, flagged in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("non-public", not address.is_global),
    ):
        if flagged:
            return problem
    return ""


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _read_capped(response: httpx.Response) -> tuple[bytes, bool]:
    """The decoded body up to ``MAX_BODY_BYTES`` and whether there was more; the rest is never read, so a huge or
    endless body costs nothing."""
    content = bytearray()
    for chunk in response.iter_bytes():
        content.extend(chunk)
        if len(content) > MAX_BODY_BYTES:
            return bytes(content[:MAX_BODY_BYTES]), True
    return bytes(content), False


def _is_certificate_error(error: BaseException) -> bool:
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _outputs(response: httpx.Response, content: bytes, *, cut: bool, host: str) -> dict[str, Any]:
    """The declared outputs; 429 and 5xx raise TransientTaskError instead."""
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientTaskError(
            f"{host} answered {response.status_code}: {content[:300].decode('utf-8', 'replace')}",
            retry_after=retry_after_seconds(response),
        )
    body: Any = content.decode(response.encoding or "utf-8", errors="replace")
    if not cut and "json" in response.headers.get("Content-Type", "").lower():
        # Announced as JSON but not JSON: the text is the honest answer.
        with contextlib.suppress(ValueError):
            body = json.loads(content)
    return {"body": body, "status_code": response.status_code, "headers": dict(response.headers)}
