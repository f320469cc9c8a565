"""Calling a service's REST API from a connector: one client, one error mapping for every integration.

Transient failures (network errors, timeouts, 5xx, 429 with its Retry-After) become ``TransientTaskError`` so the
engine retries them with backoff; other 4xx answers become ``TaskError`` carrying the service's own message.

Every call goes through the egress guard (``apps/integrations/egress.py``), which checks the address each connection
goes to. A URL built on a base URL the operator chose (a setting, or the connector's built-in default) is called with
``trusted=True``: its host may be an internal address (tests point the settings at fakes on 127.0.0.1). One built
from what a user stored (a Zendesk subdomain, a Jira site) is not trusted, and reaches public addresses only, unless
allow-listed in NEENA_HTTP_ALLOWLIST.
"""

import email.utils
import time
from collections.abc import Mapping
from typing import Any

import httpx
from django.conf import settings

from apps.integrations import egress
from apps.integrations.execution import TaskError, TransientTaskError

DEFAULT_TIMEOUT_SECONDS = 30.0


def base_url(setting_name: str, fallback: str = "") -> str:
    """The API base URL from its setting (tests point it at a fake on 127.0.0.1), else the account's own."""
    url = getattr(settings, setting_name, "") or fallback
    if not url:
        raise TaskError(f"No base URL: set {setting_name} or give the account's address in the credential's config.")
    return url.rstrip("/")


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After as seconds, from either of its forms (a number, or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        for key in ("message", "error_description", "error", "description", "errorMessages", "detail"):
            if body.get(key):
                value = body[key]
                return value if isinstance(value, str) else str(value)
    return str(body)[:300]


def raise_for_status(response: httpx.Response, service: str) -> None:
    """Maps an unsuccessful answer to the engine's errors."""
    if response.status_code == 429:
        raise TransientTaskError(
            f"{service} is rate limiting (429): {_error_message(response)}", retry_after=retry_after_seconds(response)
        )
    if response.status_code >= 500:
        raise TransientTaskError(f"{service} answered {response.status_code}: {_error_message(response)}")
    if response.status_code >= 400:
        raise TaskError(f"{service} refused the request ({response.status_code}): {_error_message(response)}")


def request(
    service: str,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    data: Any = None,
    auth: Any = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    trusted: bool = False,
) -> httpx.Response:
    """One call with the error mapping applied; returns the successful response. ``trusted``: the URL's origin is the
    operator's choice, not a user's (see the module docstring); a refused address is ``EgressRefusedError``."""
    try:
        response = egress.request(
            method,
            url,
            trusted=trusted,
            headers=headers,
            params=params,
            json=json,
            data=data,
            auth=auth,
            timeout=timeout,
        )
    except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as error:
        raise TransientTaskError(f"{service} could not be reached: {type(error).__name__}: {error}") from error
    raise_for_status(response, service)
    return response
