"""The domain error types and the one exception handler that turns every error into the documented JSON.

Status codes (DESIGN.md §1): 401 missing or invalid token, 403 missing scope or role, 404 unknown or foreign id,
409 state conflict or protected object, 413 oversized body, 422 validation, 429 throttled, 503 database or broker
down. Every body is JSON with ``detail``; validation errors carry the list shape existing clients parse::

    {"detail": [{"loc": ["body", "task_operations", 1, "task_definition"], "msg": "...", "type": "..."}]}

and every other error ``{"detail": "...", "code": "..."}``.
"""

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response
from rest_framework.settings import api_settings

logger = logging.getLogger(__name__)

Location = Sequence[str | int]


@dataclass(frozen=True)
class ErrorItem:
    """One validation problem: where it is (``loc``), what is wrong (``msg``) and a stable machine code (``type``)."""

    loc: Location
    msg: str
    type: str

    def as_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


class ApplicationError(Exception):
    """A domain error a service raises; the handler renders it with its status code."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    default_code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code


class NotFoundError(ApplicationError):
    """Unknown id, or another organization's object: the two are never told apart."""

    status_code = status.HTTP_404_NOT_FOUND
    default_code = "not_found"


class ConflictError(ApplicationError):
    """The object is not in a state that allows the operation (or is still referenced)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class ForbiddenError(ApplicationError):
    """The caller is authenticated but may not do this."""

    status_code = status.HTTP_403_FORBIDDEN
    default_code = "permission_denied"


class InputValidationError(ApplicationError):
    """Input that is well-formed JSON but not acceptable; rendered as the 422 ``detail`` list."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "validation_error"

    def __init__(self, items: Sequence[ErrorItem]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, item.loc))}: {item.msg}" for item in items))
        self.items = list(items)

    @classmethod
    def single(cls, loc: Location, msg: str, type: str) -> "InputValidationError":
        return cls([ErrorItem(loc=loc, msg=msg, type=type)])


def drf_errors_to_items(detail: Any, location: Location) -> Iterator[ErrorItem]:
    """Flattens DRF's nested error structure (dicts by field, lists by index) into located items."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            # DRF puts object-level errors under "non_field_errors": they belong to the object itself.
            child = location if key == api_settings.NON_FIELD_ERRORS_KEY else [*location, key]
            yield from drf_errors_to_items(value, child)
    elif isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            for item in detail:
                yield ErrorItem(loc=list(location), msg=str(item), type=getattr(item, "code", "invalid") or "invalid")
        else:
            for index, item in enumerate(detail):
                if item:
                    yield from drf_errors_to_items(item, [*location, index])
    else:
        yield ErrorItem(loc=list(location), msg=str(detail), type=getattr(detail, "code", "invalid") or "invalid")


def _error(status_code: int, message: str, code: str, headers: dict[str, str] | None = None) -> Response:
    return Response({"detail": message, "code": code}, status=status_code, headers=headers)


def _validation_response(items: Sequence[ErrorItem]) -> Response:
    return Response({"detail": [item.as_dict() for item in items]}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: the documented status code and body for every error a view can raise."""
    if isinstance(exc, InputValidationError):
        return _validation_response(exc.items)
    if isinstance(exc, ApplicationError):
        return _error(exc.status_code, exc.message, exc.code)
    if isinstance(exc, drf_exceptions.ValidationError):
        return _validation_response(list(drf_errors_to_items(exc.detail, ["body"])))
    if isinstance(exc, drf_exceptions.ParseError):
        return _validation_response([ErrorItem(loc=["body"], msg=str(exc.detail), type="json_invalid")])
    if isinstance(exc, RequestDataTooBig):
        return _error(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, "Request body is too large.", "request_too_large")
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        return _error(status.HTTP_404_NOT_FOUND, "Not found.", "not_found")
    if isinstance(exc, DjangoPermissionDenied):
        return _error(
            status.HTTP_403_FORBIDDEN, "You do not have permission to perform this action.", "permission_denied"
        )
    if isinstance(exc, ProtectedError | RestrictedError):
        return _error(status.HTTP_409_CONFLICT, "The object is still referenced by other objects.", "protected")
    if isinstance(exc, IntegrityError):
        logger.info("Integrity error answered as 409: %s", exc)
        return _error(status.HTTP_409_CONFLICT, "The change conflicts with the current state.", "conflict")
    if isinstance(exc, OperationalError | InterfaceError):
        logger.warning("Database unavailable: %s", exc)
        return _error(status.HTTP_503_SERVICE_UNAVAILABLE, "The database is unavailable.", "database_unavailable")
    if isinstance(exc, DatabaseError):
        logger.exception("Unexpected database error")
        return None

    # Imported here: rest_framework.views reads the parser classes, and apps.core.parsers raises this module's errors.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
    code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    response.data = {"detail": str(detail), "code": code}
    return response
