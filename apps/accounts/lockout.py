"""Locking out repeated failed logins: people at the admin's and the OAuth2 server's login pages (django-axes), and
OAuth2 client applications at ``/o/token/`` and ``/o/revoke_token/`` (a counter in Django's cache).

Both count failures per account *and* client address together (a person's email, or a client id, with the address the
request came from): NEENA_LOGIN_FAILURE_LIMIT failures lock that pair out for NEENA_LOGIN_LOCKOUT_MINUTES, and the
lockout answers 429 with ``Retry-After``. Per pair rather than per account, so nobody can lock someone else out from
elsewhere by failing on purpose; per pair rather than per address, so people behind one address (an office, a proxy)
are not locked out by one of them.

Client secrets are never sent through Django's ``authenticate()``, so django-axes cannot see them; the client counter
is the same idea, kept small: a failure is an answer of 401 (``invalid_client``), a success clears the count.
"""

import base64
import binascii
import hashlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

LOCKED_OUT_TEMPLATE = "registration/locked_out.html"


def lockout_seconds() -> int:
    return int(settings.NEENA_LOGIN_LOCKOUT_MINUTES * 60)


# --- People (django-axes) ---------------------------------------------------------------------------------------


def login_username(request: HttpRequest, credentials: dict[str, Any] | None = None) -> str:
    """AXES_USERNAME_CALLABLE: the email a login tried, as the user model compares it (case-insensitively), so
    ``Ann@Example.com`` and ``ann@example.com`` share one count. Django's login form posts it as ``username``."""
    source = credentials if credentials else request.POST
    return str(source.get("username") or "").strip().lower()


def login_lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: a 429 page in the admin's look, with ``Retry-After``, instead of the login form."""
    seconds = lockout_seconds()
    response = render(
        request,
        LOCKED_OUT_TEMPLATE,
        {"minutes": settings.NEENA_LOGIN_LOCKOUT_MINUTES, "title": "Too many failed logins"},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response


# --- OAuth2 clients (/o/token/, /o/revoke_token/) ---------------------------------------------------------------


def _client_id(request: HttpRequest) -> str:
    """The client id the request authenticates as: from ``Authorization: Basic`` (base64 of the form-encoded
    ``id:secret``, RFC 6749 §2.3.1, as the toolkit reads it) or else the form's ``client_id``; empty for neither."""
    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            decoded = ""
        if ":" in decoded:
            return unquote_plus(decoded.split(":", 1)[0])
    return str(request.POST.get("client_id", ""))


def _client_keys(request: HttpRequest) -> tuple[str, str]:
    """The cache keys of the request's (client id, address) pair: its failure count and its lockout."""
    pair = f"{_client_id(request)}|{request.META.get('REMOTE_ADDR', '')}"
    digest = hashlib.sha256(pair.encode()).hexdigest()
    return f"oauth2-client-failures:{digest}", f"oauth2-client-locked:{digest}"


def _fail_open(action: Callable[[], Any], default: Any) -> Any:
    """Runs a cache call; when the cache does not answer, logs it and goes on without (as apps/core/throttling.py)."""
    try:
        return action()
    except (RedisError, OSError) as error:
        logger.warning("OAuth2 client lockout not checked, the cache is unavailable: %s", error)
        return default


def client_lockout_remaining(request: HttpRequest) -> int:
    """Seconds the request's (client id, address) pair stays locked out; 0 when it is not."""
    _, locked_key = _client_keys(request)
    until = _fail_open(lambda: cache.get(locked_key), None)
    return max(0, math.ceil(float(until) - time.time())) if until else 0


def client_attempt_record(request: HttpRequest, *, failed: bool) -> None:
    """Counts a failed client authentication (the NEENA_LOGIN_FAILURE_LIMIT-th locks the pair out), or clears the
    count after a success."""
    failures_key, locked_key = _client_keys(request)
    seconds = lockout_seconds()

    def record() -> None:
        if not failed:
            cache.delete(failures_key)
            return
        cache.add(failures_key, 0, timeout=seconds)
        if cache.incr(failures_key) >= settings.NEENA_LOGIN_FAILURE_LIMIT:
            cache.set(locked_key, time.time() + seconds, timeout=seconds)
            cache.delete(failures_key)
            logger.warning("OAuth2 client locked out for %s minutes after failed attempts", seconds // 60)

    _fail_open(record, None)


def client_lockout_answer(retry_after: int) -> JsonResponse:
    response = JsonResponse(
        {
            "detail": f"Too many failed client authentications from this address; try again in {retry_after} seconds.",
            "code": "client_locked_out",
        },
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    return response
