"""The one API router: the documented query-string style of paths.

The reference API addresses objects by query string rather than by path: ``GET /x/?id=`` reads, ``PUT /x/`` with
``id`` in the body updates, ``DELETE /x/?id=`` deletes, ``GET /x/all`` lists, and named operations such as
``/flows/generate`` hang off the collection. This router maps viewset actions onto exactly those paths, spelled as
the reference spells them (``/flow_requests/`` with its slash, ``/flow_requests/all`` without).

Every route also takes the other spelling (``/flow_requests``, ``/flow_requests/all/``) and answers it the same, for
every method: a redirect would turn a client's POST into a GET and drop a PUT's body. The optional slash is written
``/?`` after the instance route and ``(?:/)?`` after the others, so that the OpenAPI schema, which reads each path
from its regex, keeps listing the spelling the reference documents and lists it once.
"""

from rest_framework.routers import DynamicRoute, Route, SimpleRouter


class QueryStringRouter(SimpleRouter):
    routes = [
        Route(
            url=r"^{prefix}/?$",
            mapping={"get": "retrieve", "post": "create", "put": "update", "delete": "destroy"},
            name="{basename}",
            detail=False,
            initkwargs={"suffix": "Instance"},
        ),
        Route(
            url=r"^{prefix}/all(?:/)?$",
            mapping={"get": "list"},
            name="{basename}-all",
            detail=False,
            initkwargs={"suffix": "List"},
        ),
        DynamicRoute(url=r"^{prefix}/{url_path}(?:/)?$", name="{basename}-{url_name}", detail=False, initkwargs={}),
    ]
