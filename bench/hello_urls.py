"""The benchmark's URLconf: every product URL, plus ``/bench/hello``, the ceiling the API figures are measured against.

Selected only by ``bench.settings`` (through NEENA_BENCH_ROOT_URLCONF), so the hello-world never becomes a product URL.
"""

from django.urls import path
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from neena.urls import handler404, handler500
from neena.urls import urlpatterns as product_urlpatterns

__all__ = ["handler404", "handler500", "urlpatterns"]


@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
@throttle_classes([])
def hello(request: Request) -> Response:
    """The least a DRF JSON endpoint can do: no token, no database, a constant body through the JSON renderer."""
    return Response({"hello": "world"})


urlpatterns = [path("bench/hello", hello, name="bench-hello"), *product_urlpatterns]
