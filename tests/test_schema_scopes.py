"""The whole API against its schema, once per kind of caller, on a live server (as ``tests/test_schema.py``).

Personas, each with its own token:

- ``full``: read, write and approve. Every built-in check: no 5xx, documented status codes, content types, bodies and
  headers matching the schema, invalid data rejected, missing authentication rejected.
- ``read_only``: the read scope alone. The same checks, and every operation that needs write or approve answers 403.
- ``outsider``: every scope, in an organization of its own, while another organization holds a flow, a flow request,
  a run, a webhook trigger operation and a trigger run. Generated requests are aimed at those objects (their ids
  replace the generated ones) and must learn nothing: an operation addressing one answers 404, a body referring to
  one answers exactly as for an id that exists nowhere, and no successful answer carries one of their ids.

``max_examples`` is small: the three personas together must stay a small part of the suite's time.
"""

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from django.conf import settings as django_settings
from hypothesis import HealthCheck, settings

from apps.accounts.models import User
from apps.accounts.services import api_key_create
from apps.webhooks.models import TriggerRun
from tests.factories import (
    FlowRequestFactory,
    FlowRunFactory,
    UserFactory,
    WebhookTriggerOperationFactory,
    chain_flow,
    personal_organization,
)
from tests.test_schema import CHECKS_CONFIG, OPENAPI, TOKENLESS

schema = schemathesis.openapi.from_dict(OPENAPI, config=CHECKS_CONFIG)

# Operations a read-only token may call: safe methods, except generating a flow, which persists it.
NEEDS_MORE_THAN_READ = {("GET", "/api/v1/flows/generate")}

# Query parameters and body fields naming the object an operation addresses, by path: a foreign one must be a 404.
ADDRESSED_IN_QUERY = {
    "/api/v1/flow_requests/": {"id": "flow_request"},
    "/api/v1/flows/": {"id": "flow"},
    "/api/v1/flows/execute": {"flow_id": "flow", "id": "flow", "flow_request_id": "flow_request"},
    "/api/v1/flows/generate": {"flow_request_id": "flow_request"},
    "/api/v1/flows/export": {"id": "flow"},
    "/api/v1/flows/import": {"flow_id": "flow"},
    "/api/v1/flow_runs/": {"id": "flow_run"},
    "/api/v1/flow_runs/with_flow_result": {"id": "flow_run"},
    "/api/v1/flow_runs/all_for_flow_id": {"flow_id": "flow"},
    "/api/v1/flow_runs/approve": {"flow_run_id": "flow_run"},
    "/api/v1/flow_runs/reject": {"flow_run_id": "flow_run"},
    "/api/v1/flow_runs/cancel": {"flow_run_id": "flow_run"},
    "/api/v1/flow_runs/retry": {"flow_run_id": "flow_run"},
    "/api/v1/flow_runs/rerun": {"flow_run_id": "flow_run"},
    "/api/v1/flow_runs/rerun_from": {"flow_run_id": "flow_run"},
    "/api/v1/flow_runs/retry_failed": {"flow_id": "flow"},
    "/api/v1/webhook_trigger_operations/": {"id": "trigger_operation"},
    "/api/v1/webhook_trigger_operations/rotate_secret": {"id": "trigger_operation"},
    "/api/v1/webhook_trigger_runs/": {"id": "trigger_run"},
}
ADDRESSED_IN_BODY = {
    ("PUT", "/api/v1/flow_requests/"): {"id": "flow_request"},
    ("PUT", "/api/v1/flows/"): {"id": "flow"},
    ("PUT", "/api/v1/webhook_trigger_operations/"): {"id": "trigger_operation"},
    ("POST", "/api/v1/flow_runs/"): {"flow": "flow", "flow_request": "flow_request"},
    ("POST", "/api/v1/flow_runs/retry_failed"): {"flow_id": "flow"},
}
# Everything else naming an object of another organization: answered as if the id existed nowhere.
REFERRED_TO_IN_QUERY = {
    "/api/v1/webhook_trigger_runs/all": {"operation_id": "trigger_operation"},
    "/api/v1/integration_credentials/oauth2/authorize_url": {"organization": "organization"},
}
REFERRED_TO_IN_BODY = {"organization": "organization", "flow": "flow", "flow_request": "flow_request"}

UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class Persona:
    """A caller: its token, and the other organization's objects by kind (empty unless it is the outsider)."""

    name: str
    token: str
    foreign: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def other_organization_objects(user: User) -> dict[str, str]:
    """A flow, a flow request, a run, a trigger operation and a trigger run in ``user``'s organization, by kind."""
    organization = personal_organization(user)
    flow = chain_flow(organization, steps=2)
    flow_request = FlowRequestFactory(organization=organization, flow=flow)
    flow_run = FlowRunFactory(organization=organization, flow=flow, flow_request=flow_request)
    operation = WebhookTriggerOperationFactory(organization=organization)
    trigger_run = TriggerRun.objects.create(
        organization=organization, operation=operation, delivery_id="delivery-1", payload={"ticket": {"id": 1}}
    )
    objects = {
        "organization": organization,
        "flow": flow,
        "flow_request": flow_request,
        "flow_run": flow_run,
        "trigger_operation": operation,
        "trigger_run": trigger_run,
    }
    return {kind: str(obj.id) for kind, obj in objects.items()}


@pytest.fixture(params=["full", "read_only", "outsider"])
def persona(request: pytest.FixtureRequest, transactional_db: None) -> Persona:
    owner = UserFactory(email="fuzz-owner@example.com")
    foreign = other_organization_objects(owner)
    if request.param == "full":
        return Persona("full", api_key_create(user=owner, scopes=["read", "write", "approve"]))
    if request.param == "read_only":
        return Persona("read_only", api_key_create(user=owner, scopes=["read"]))
    outsider = UserFactory(email="fuzz-outsider@example.com")
    return Persona("outsider", api_key_create(user=outsider, scopes=["read", "write", "approve"]), foreign)


def aim_at_foreign_objects(case: Any, persona: Persona) -> tuple[dict[str, str], dict[str, str]]:
    """Puts the other organization's ids in place of the generated ones; returns what was replaced, as
    (addressed, referred to): location and name -> the id put there."""
    path, method = case.operation.path, case.method.upper()
    addressed: dict[str, str] = {}
    referred: dict[str, str] = {}
    query_names = set(case.query or {})
    for names, found in ((ADDRESSED_IN_QUERY.get(path, {}), addressed), (REFERRED_TO_IN_QUERY.get(path, {}), referred)):
        for name, kind in names.items():
            if name in query_names:
                case.query[name] = found[f"query.{name}"] = persona.foreign[kind]
    if isinstance(case.body, dict):
        in_body = ADDRESSED_IN_BODY.get((method, path), {})
        for name, kind in {**REFERRED_TO_IN_BODY, **in_body}.items():
            if name in case.body:
                (addressed if name in in_body else referred)[f"body.{name}"] = persona.foreign[kind]
                case.body[name] = persona.foreign[kind]
    return addressed, referred


def replace_ids(case: Any, replaced: dict[str, str], new_ids: dict[str, str]) -> None:
    for where, old in replaced.items():
        location, name = where.split(".", 1)
        container = case.query if location == "query" else case.body
        container[name] = new_ids[old]


def without_ids(text: str) -> str:
    return UUID_PATTERN.sub("<id>", text)


@pytest.mark.live_server
@schema.parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_persona_gets_only_what_its_token_allows(case, live_server, persona):
    method, path = case.method.upper(), case.operation.path
    # The coverage phase also sends methods the operation does not have (405); the scope rules are about its own.
    own_method = method == case.operation.method.upper()
    replaced: tuple[dict[str, str], dict[str, str]] = ({}, {})
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if persona.name == "outsider" and own_method and positive:
        replaced = aim_at_foreign_objects(case, persona)

    response = case.call_and_validate(
        base_url=live_server.url,
        headers=persona.headers,
        # As in tests/test_schema.py: a well-formed id of a row that does not exist is rightly a 404 or 422. And the
        # persona's own headers replace whatever a negative case did to Authorization, so such a case is no longer
        # negative here; tests/test_schema.py checks the refusal of schema-violating data.
        excluded_checks=[schemathesis.checks.positive_data_acceptance, schemathesis.checks.negative_data_rejection],
    )

    if response.request.headers.get("Authorization") != persona.headers["Authorization"]:
        return  # a case about authentication itself (missing or malformed), checked by schemathesis above
    tokenless = (method.lower(), path) in TOKENLESS  # judged by its signature, not by the token's scopes
    needs_more_than_read = own_method and not tokenless and (method != "GET" or (method, path) in NEEDS_MORE_THAN_READ)
    # The scope is judged before the body is read (test_the_token_is_judged_before_the_body).
    # A body past NEENA_MAX_BODY_BYTES is refused (413) before any token is read, whoever sends it.
    too_large = len(response.request.body or b"") > django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if persona.name == "read_only" and needs_more_than_read and not too_large:
        assert response.status_code == 403, f"{method} {path} with a read-only token: {response.status_code}"
    if persona.name != "outsider":
        return
    if 200 <= response.status_code < 300:
        leaked = [kind for kind, object_id in persona.foreign.items() if object_id in response.text]
        assert not leaked, f"{method} {path} answered another organization's {leaked}"
    addressed, referred = replaced
    if addressed:
        # 404, unless the request is refused for something else before any object is looked up.
        judged = {tuple(where.split(".", 1)) for where in addressed}
        assert response.status_code == 404 or (
            response.status_code == 422 and not judged & set(map(tuple, error_locations(response)))
        ), f"{method} {path} for another organization's {addressed}: {response.status_code} {response.text[:300]}"
    if addressed or referred:
        # The same request naming ids that exist nowhere must get the same answer: existence is never revealed.
        unknown = {object_id: str(uuid.uuid4()) for object_id in {*addressed.values(), *referred.values()}}
        replace_ids(case, {**addressed, **referred}, unknown)
        control = case.call(base_url=live_server.url, headers=persona.headers)
        assert (response.status_code, without_ids(response.text)) == (
            control.status_code,
            without_ids(control.text),
        ), f"{method} {path}: another organization's ids {addressed or referred} are told apart from unknown ones"


def error_locations(response: Any) -> list[list[str | int]]:
    """The ``loc`` of each item of a 422's detail list (``[]`` for any other body)."""
    try:
        detail = response.json().get("detail")
    except ValueError:
        return []
    return [item.get("loc", []) for item in detail] if isinstance(detail, list) else []


@pytest.mark.parametrize("content_type, body", [("text/plain", "x"), ("application/json", "{not json")])
def test_the_token_is_judged_before_the_body(owner, make_client, client, content_type, body):
    read_only = make_client(owner, scopes=("read",))

    assert read_only.generic("POST", "/api/v1/flow_requests/", body, content_type=content_type).status_code == 403
    assert client.generic("POST", "/api/v1/flow_requests/", body, content_type=content_type).status_code == 401
