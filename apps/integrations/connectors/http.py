"""The ``http`` integration: call any HTTP(S) endpoint a user names, guarded against server-side request forgery.

A URL given by a user must not reach the platform's own network. Every connection, the first one and each redirect
hop alike, goes through the egress guard (``apps/integrations/egress.py``): the host is resolved once, the request
is refused when any address it resolves to is private, loopback, link-local, reserved, multicast, unspecified or a
cloud metadata address (IPv4 carried in IPv6 is judged by that IPv4 address) unless the host name, or the literal IP
as written, is in ``NEENA_HTTP_ALLOWLIST``, and the socket connects to the checked address, so a DNS answer that
changes in between (DNS rebinding) cannot redirect the request. The ``Host`` header and, for https, the TLS SNI and
certificate check keep the original name. Only ``http`` and ``https`` are allowed, and redirects are followed here,
at most ``MAX_REDIRECTS`` of them, never by httpx. Environment proxies are ignored.

Redirects follow browser rules (303, and 301/302 after a POST, continue as a GET without the body); credentials
(Authorization, Cookie) are not carried to another origin, and cookies set by a response are not replayed. When a
host has several addresses, all are checked and the next is tried only if a connection cannot be made.

Answers: 4xx come back as outputs (the caller usually wants the status, e.g. 404 means "not there"); 429 and 5xx
raise ``TransientTaskError`` (with Retry-After), as do network errors and timeouts, so the engine retries them. An
invalid TLS certificate, a refused address and a host that does not resolve are ``TaskError``. The body is JSON when
the response says so, else text; it is cut at ``MAX_BODY_BYTES`` (and then always text).

Known limits: the name resolution itself has no timeout of its own (the system resolver's applies), and the
allow-list matches host names exactly (no wildcards, no ports).
"""

import contextlib
import json
import socket
import ssl
import time
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx

from apps.integrations import egress
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
    """Steps: check the target's scheme, send through the egress guard (which checks the address it connects to),
    and on a redirect check the next target and go again (at most ``MAX_REDIRECTS`` times); 429/5xx raise a
    transient error, anything else is returned."""
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

    with egress.client(follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            response, content, cut = _send_checked(
                client, method=method, url=target, headers=request_headers, body=body, deadline=deadline
            )
            # Cookies set by a response are not replayed, on this hop's origin or any other.
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


def _send_checked(
    client: httpx.Client,
    *,
    method: str,
    url: httpx.URL,
    headers: dict[str, str],
    body: Any,
    deadline: float,
) -> tuple[httpx.Response, bytes, bool]:
    """One request; returns the response, its body read up to ``MAX_BODY_BYTES``, and whether the body was longer.

    The guard under the client refuses a non-public address with ``EgressRefusedError`` (a TaskError), before anything
    is sent; the checks here are the ones that need the URL (its scheme, its host)."""
    if url.scheme not in ("http", "https"):
        raise TaskError(f"Only http and https URLs can be called, not '{url.scheme or 'no scheme'}'.")
    if not url.raw_host:
        raise TaskError(f"The URL '{url}' names no host.")
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TransientTaskError(f"{url.host} did not answer within the step's time limit.")
    try:
        with client.stream(method, url, headers=headers, json=body, timeout=remaining) as response:
            return response, *_read_capped(response)
    except httpx.ConnectError as error:
        if _has_cause(error, ssl.SSLCertVerificationError):
            raise TaskError(f"The TLS certificate of {url.host} is not valid: {error}") from error
        unresolved = _cause(error, socket.gaierror)
        if unresolved is not None and unresolved.errno != socket.EAI_AGAIN:
            raise TaskError(f"The host {url.host} does not resolve: {unresolved}") from error
        raise TransientTaskError(f"{url.host} could not be reached: {type(error).__name__}: {error}") from error
    except httpx.TimeoutException as error:
        raise TransientTaskError(f"{url.host} did not answer in time: {type(error).__name__}") from error
    except httpx.LocalProtocolError as error:
        raise TaskError(f"The request to {url.host} is malformed: {error}") from error
    except (httpx.NetworkError, httpx.RemoteProtocolError) as error:
        raise TransientTaskError(f"{url.host} could not be reached: {type(error).__name__}: {error}") from error


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


CauseT = TypeVar("CauseT", bound=BaseException)


def _cause(error: BaseException, kind: type[CauseT]) -> CauseT | None:
    """The first exception of ``kind`` in the error's chain of causes (httpx wraps httpcore's, which wraps the
    socket's), or None."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, kind):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


def _has_cause(error: BaseException, kind: type[BaseException]) -> bool:
    return _cause(error, kind) is not None


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
