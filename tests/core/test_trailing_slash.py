"""Every API path answers the same with and without its trailing slash, for every method, and never redirects.

A redirect is no answer for an API: clients follow a 301 with a GET, and a PUT loses its body on the way.
"""

import re
from collections.abc import Iterator

import pytest
from django.contrib.admindocs.views import simplify_regex
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator

from apps.flows.models import FlowRequest
from tests.factories import FlowRequestFactory

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")
# Stands for every path parameter (only the inbound webhook has one): fixed, so every process collects the same tests.
SOME_ID = "00000000-0000-4000-8000-000000000000"


def walk(patterns: list, prefix: str = "") -> Iterator[tuple[str, object]]:
    """(the pattern text from the root, the view) of every route of the URL map."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def methods_of(view: object) -> list[str]:
    """The methods a view answers: a viewset's action mapping, else the handlers its class defines."""
    actions = getattr(view, "actions", None)
    if actions:
        return sorted(actions)
    view_class = getattr(view, "view_class", None) or getattr(view, "cls", None)
    return [method for method in METHODS if view_class is not None and hasattr(view_class, method)]


def api_routes() -> list[tuple[str, str]]:
    """(method, path without its trailing slash) for every route under /api/, each once."""
    routes = set()
    for text, view in walk(get_resolver().url_patterns):
        path = simplify_regex(text)
        if not path.startswith("/api/"):
            continue
        path = re.sub(r"<[^>]+>", SOME_ID, path).rstrip("/")
        routes.update((method, path) for method in methods_of(view))
    return sorted(routes)


API_ROUTES = api_routes()


def test_the_walk_finds_the_api():
    paths = {path for _, path in API_ROUTES}

    assert len(API_ROUTES) > 40
    assert {"/api/v1/flow_requests", "/api/v1/flow_requests/all", "/api/v1/flows/generate", "/api/schema"} <= paths
    assert any(path.startswith("/api/v1/webhooks/") for path in paths)


@pytest.mark.parametrize(("method", "path"), API_ROUTES, ids=[f"{m} {p}" for m, p in API_ROUTES])
def test_every_api_route_answers_both_spellings_the_same(api, method, path):
    body = None if method == "get" else {}
    without_slash = getattr(api, method)(path, body, format="json")
    with_slash = getattr(api, method)(f"{path}/", body, format="json")

    assert not 300 <= without_slash.status_code < 400, without_slash
    assert not 300 <= with_slash.status_code < 400, with_slash
    assert without_slash.status_code == with_slash.status_code


def test_post_without_the_slash_creates(api, organization):
    response = api.post("/api/v1/flow_requests", {"request_instructions": "Summarise the ticket."}, format="json")

    assert response.status_code == 200
    assert FlowRequest.objects.get(id=response.json()["id"]).request_instructions == "Summarise the ticket."


def test_put_without_the_slash_updates_with_its_body(api, organization):
    flow_request = FlowRequestFactory(organization=organization)

    response = api.put(
        "/api/v1/flow_requests", {"id": str(flow_request.id), "request_instructions": "Updated."}, format="json"
    )

    assert response.status_code == 200
    flow_request.refresh_from_db()
    assert flow_request.request_instructions == "Updated."


def test_list_with_a_trailing_slash(api, organization):
    FlowRequestFactory(organization=organization)

    assert len(api.get("/api/v1/flow_requests/all/").json()) == 1


@pytest.mark.parametrize("path", ["/o/token", "/o/revoke_token", "/o/introspect"])
def test_oauth2_endpoints_answer_both_spellings(client, path):
    without_slash = client.post(path, {"grant_type": "client_credentials"})
    with_slash = client.post(f"{path}/", {"grant_type": "client_credentials"})

    assert not 300 <= without_slash.status_code < 400
    assert without_slash.status_code == with_slash.status_code


@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
def test_an_unknown_api_path_is_a_json_404_never_a_redirect(api, method):
    response = getattr(api, method)("/api/v1/nope")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_the_admin_still_appends_its_slash(client):
    response = client.get("/admin")

    assert response.status_code == 301
    assert response["Location"] == "/admin/"


def test_the_schema_lists_each_path_once():
    paths = list(SchemaGenerator().get_schema(request=None, public=True)["paths"])

    assert len({path.rstrip("/") for path in paths}) == len(paths)
    assert "/api/v1/flow_requests/" in paths
    assert "/api/v1/flow_requests/all" in paths
