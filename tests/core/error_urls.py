"""A test-only URL map: Neena's, plus views that fail on purpose, under the API and outside it."""

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from neena.urls import handler400, handler403, handler404, handler500
from neena.urls import urlpatterns as neena_urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]


def crash(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug")


@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
def drf_crash(request: Request) -> Response:
    raise RuntimeError("a bug in a DRF view")


def forbidden(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied


def form_post(request: HttpRequest) -> HttpResponse:
    """A cookie-session form endpoint: CSRF-protected, as Django views are unless exempted."""
    return HttpResponse("ok")


urlpatterns = [
    path("api/v1/test-crash", crash),
    path("api/v1/test-drf-crash", drf_crash),
    path("api/v1/test-forbidden", forbidden),
    path("api/v1/test-form", form_post),
    path("test-crash", crash),
    path("test-forbidden", forbidden),
    *neena_urlpatterns,
]
