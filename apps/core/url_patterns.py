"""Paths that answer with and without their trailing slash.

Clients write API paths both ways (``/flow_requests`` and ``/flow_requests/``). Redirecting one to the other breaks
them: a 301 is followed as a GET, and a PUT loses its body. So every API path is routed under both spellings instead,
and ``TrailingSlashMiddleware`` (apps/core/middleware.py) never redirects an API path. The router's routes do it in
their regexes (apps/core/routers.py); the paths written with ``path()`` get a second, unnamed pattern from
``with_both_spellings``, so ``reverse()`` still gives the one spelling documented.
"""

from collections.abc import Sequence

from django.urls import URLPattern, URLResolver, path
from django.urls.resolvers import RoutePattern


def with_both_spellings(patterns: Sequence[URLPattern | URLResolver]) -> list[URLPattern | URLResolver]:
    """The patterns, each ``path()`` route followed by a copy with the trailing slash dropped or added."""
    result: list[URLPattern | URLResolver] = []
    for pattern in patterns:
        result.append(pattern)
        if isinstance(pattern, URLPattern) and isinstance(pattern.pattern, RoutePattern):
            route = str(pattern.pattern)
            other = route.removesuffix("/") if route.endswith("/") else f"{route}/"
            if other:
                result.append(path(other, pattern.callback, pattern.default_args))
    return result
