"""``@idempotent``: the ``Idempotency-Key`` header on a write endpoint (Stripe's keys, the IETF draft "The
Idempotency-Key HTTP Header Field").

A client that sends a POST or PUT with ``Idempotency-Key: <key>`` may send it again (after a timeout, a dropped
connection) and get the first answer back, with ``Idempotent-Replayed: true``, instead of a second flow or run. What
happens to a request with a key, after authentication, scope and throttle checks, before anything else:

- the key is malformed (not 1 to 255 printable ASCII characters): 422 at ``["header", "Idempotency-Key"]``;
- the key is new (in the caller's organization), or expired, or its first request died: the request runs; a 2xx
  answer is stored, any other answer releases the key;
- the same key, the same request (user, method, path, query string, body), answered: the stored status and body;
- the same key, another request: 422 ``idempotency_key_reused``; its first request still running: 409
  ``idempotency_key_in_progress``.

Without the header the endpoint is untouched (not one query more). The services are in
``apps/idempotency/services.py``.
"""

import functools
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.db import DatabaseError, transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.models import User
from apps.accounts.roles import ORGANIZATION_HEADER
from apps.accounts.selectors import organization_default_for_user
from apps.core.exceptions import ConflictError, InputValidationError
from apps.core.renderers import ORJSONRenderer, RenderedJSON
from apps.idempotency.services import (
    HEADER,
    IdempotencyClaim,
    IdempotentReplay,
    idempotency_fingerprint,
    idempotency_key_claim,
    idempotency_key_complete,
    idempotency_key_release,
)

logger = logging.getLogger(__name__)

REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
_KEY = re.compile(rf"[\x20-\x7e]{{1,{MAX_KEY_LENGTH}}}")

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    name=HEADER,
    location=OpenApiParameter.HEADER,
    required=False,
    type={"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": r"^[ -~]+$"},
    description=(
        "Optional. A key of your choosing (a UUID, say), 1 to 255 printable ASCII characters, the same on every retry "
        "of this request. Within NEENA_IDEMPOTENCY_TTL_HOURS (24 h) of the first request, a retry with the same key "
        "and the same request (user, method, path, query string, body) answers the first successful answer again, "
        "with `Idempotent-Replayed: true`, and creates or queues nothing. The same key with another request answers "
        "422 `idempotency_key_reused`; while the first request still runs, 409 `idempotency_key_in_progress`. An "
        "error answer is not kept: the key can be retried. Keys are kept per organization (the caller's default)."
    ),
)

Handler = TypeVar("Handler", bound=Callable[..., Response])


def _key_from(request: Request) -> str | None:
    """The header's key, or None without the header. The draft's quoted form (``"abc"``) names the same key as
    ``abc``."""
    value = request.headers.get(HEADER)
    if value is None:
        return None
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not _KEY.fullmatch(value):
        raise InputValidationError.single(
            ["header", HEADER],
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
            "idempotency_key_invalid",
        )
    return value


def _rendered(response: Response) -> str:
    """The answer's JSON as the API's renderer writes it, so that a replay sends the same bytes."""
    return ORJSONRenderer().render(response.data).decode()


def _release(claim: IdempotencyClaim) -> None:
    """Frees the key of a request that failed. When the database is what failed, the claim stays and expires after
    NEENA_IDEMPOTENCY_CLAIM_SECONDS; the request's own error is the one answered."""
    try:
        idempotency_key_release(claim=claim)
    except DatabaseError as error:
        logger.warning("Could not release idempotency key %s: %s", claim.key_id, error)


def idempotent(*, in_transaction: bool = True) -> Callable[[Handler], Handler]:
    """Makes a POST or PUT handler honour ``Idempotency-Key`` (see the module's docstring) and documents the header
    on its operation.

    With ``in_transaction`` (the default) the handler and the storing of its answer are one transaction: a process
    that dies half-way leaves neither the effect nor the answer, and a request whose claim was taken over (it ran
    longer than NEENA_IDEMPOTENCY_CLAIM_SECONDS) rolls its effect back, so the key acts exactly once. A handler that
    calls the network (flow generation may ask a model) must not run inside a transaction: ``in_transaction=False``
    commits its effect first, leaving the small window where a crash before the answer is stored lets a retry, a
    claim timeout later, do it again.
    """

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
            if request.method not in ("POST", "PUT"):
                return handler(view, request, *args, **kwargs)
            key = _key_from(request)
            user = cast(User, request.user)
            # A user in no organization (a superuser made by createsuperuser) can create nothing, so there is
            # nothing to make idempotent; the endpoint answers its usual 404 or 422.
            organization = organization_default_for_user(user=user) if key is not None else None
            if key is None or organization is None:
                return handler(view, request, *args, **kwargs)
            outcome = idempotency_key_claim(
                organization=organization,
                user=user,
                key=key,
                fingerprint=idempotency_fingerprint(
                    user=user,
                    method=request.method,
                    path=request.path,
                    query_string=request.META.get("QUERY_STRING", ""),
                    body=request.body,
                    organization_header=request.headers.get(ORGANIZATION_HEADER, ""),
                ),
                method=request.method,
                path=request.path,
            )
            if isinstance(outcome, IdempotentReplay):
                return Response(
                    RenderedJSON(outcome.body.encode()), status=outcome.status, headers={REPLAYED_HEADER: "true"}
                )
            try:
                if in_transaction:
                    with transaction.atomic():
                        response = handler(view, request, *args, **kwargs)
                        if status.is_success(response.status_code) and not idempotency_key_complete(
                            claim=outcome, status=response.status_code, body=_rendered(response)
                        ):
                            raise ConflictError(
                                f"A later request with this {HEADER} took it over; this one changed nothing.",
                                code="idempotency_key_in_progress",
                            )
                else:
                    response = handler(view, request, *args, **kwargs)
                    if status.is_success(response.status_code) and not idempotency_key_complete(
                        claim=outcome, status=response.status_code, body=_rendered(response)
                    ):
                        logger.warning("Idempotency key %s was taken over while its request ran", outcome.key_id)
            except BaseException:
                _release(outcome)
                raise
            if not status.is_success(response.status_code):
                _release(outcome)
            return response

        return cast(Handler, extend_schema(methods=["POST", "PUT"], parameters=[IDEMPOTENCY_KEY_PARAMETER])(wrapper))

    return decorate
