"""Every endpoint of the API router by every role: what each may do, read from the README's roles table.

The endpoints are derived from the router (``neena.urls.router``), so an endpoint added without a row in ``CASES``
fails ``test_every_endpoint_has_a_row``. Each case is a well-formed request on the shared organization ``team``, where
one user holds each role; ``outsider`` is in no organization but their own. A caller whose role grants the action
gets the case's success status; a lower role a 403 ``role_required`` naming the role needed; the outsider a 404 (or
the 422 ``not_found`` a body naming a foreign organization always answered).
"""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from apps.accounts.models import Membership, Organization, User
from apps.accounts.roles import ACTION_ROLES, ROLE_RANK
from apps.accounts.services import api_key_create
from apps.credentials.models import IntegrationCredential
from apps.credentials.services.credentials import credential_upsert
from apps.credentials.services.oauth2 import oauth2_authorize_url
from apps.flows.models import Flow, FlowRequest
from apps.flows.services import DependencyDraft, flow_create, flow_request_create
from apps.mcp_servers.models import McpServer
from apps.runs.models import FlowResult, FlowRun, TaskRun
from apps.runs.services.run_creation import flow_execute
from apps.webhooks.models import TriggerRun, WebhookTriggerOperation
from neena.urls import router
from tests.factories import (
    FlowResultFactory,
    FlowRunFactory,
    UserFactory,
    WebhookTriggerOperationFactory,
    add_member,
    task_definition,
    trigger_definition,
)
from tests.fakes.oauth_provider import FakeOAuthProvider
from tests.mcp_servers.conftest import TIME_SERVER
from tests.runs.flows import run_steps, step

pytestmark = pytest.mark.django_db

ROLES = ["viewer", "member", "approver", "admin", "owner"]
PERSONAS = [*ROLES, "outsider"]


@dataclass
class World:
    """The team organization, a user per role in it, an outsider, and one object of every kind in it."""

    team: Organization
    users: dict[str, User]
    colleague: User
    flow: Flow
    flow_request: FlowRequest
    waiting_run: FlowRun
    failed_run: FlowRun
    result: FlowResult
    credential: IntegrationCredential
    operation: WebhookTriggerOperation
    trigger_run: TriggerRun
    provider: FakeOAuthProvider
    mcp_server: McpServer


@dataclass
class Call:
    query: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] | None = None


@dataclass
class Case:
    """``needs``: the lowest role that may (None: any signed-in user, outsider included). ``ok``: the status it gets.
    ``outsider``: what the outsider gets (when ``needs`` is a role)."""

    needs: str | None
    build: Callable[[World, User], Call]
    ok: int = 200
    outsider: int = 404


def _flow_body(world: World, **extra: Any) -> dict[str, Any]:
    return {
        "name": "Matrix flow",
        "task_operations": [
            {"index": 0, "name": "Say", "task_definition": str(task_definition("Format Text").id), "parameters": {}}
        ],
        "dependencies": [],
        **extra,
    }


def _oauth2_code(world: World, user: User) -> Call:
    """A state the caller was given while a member (or the owner's, for the outsider), its code granted."""
    minted_by = world.users["owner"] if user.email == "outsider@example.com" else user
    membership = Membership.objects.filter(user=minted_by, organization=world.team)
    role = membership.get().role
    membership.update(role="owner")
    url = oauth2_authorize_url(user=minted_by, integration_short_name="slack", organization=world.team.id)
    membership.update(role=role)
    query = {key: values[0] for key, values in parse_qs(urlparse(url).query).items()}
    world.provider.grant_code("code-1", query["code_challenge"])
    return Call(body={"integration_short_name": "slack", "code": "code-1", "state": query["state"]})


def _organization_delete(world: World, user: User) -> Call:
    FlowRun.objects.filter(organization=world.team).update(status=FlowRun.Status.CANCELLED)
    return Call(query={"id": world.team.id})


def _team(world: World, _: User) -> str:
    return str(world.team.id)


CASES: dict[tuple[str, str], Case] = {
    ("GET", "/api/v1/users/"): Case(None, lambda w, u: Call()),
    ("POST", "/api/v1/users/create_if_not_exists"): Case(
        None, lambda w, u: Call(body={"email": u.email, "auth0_id": ""})
    ),
    ("GET", "/api/v1/organizations/all"): Case(None, lambda w, u: Call()),
    ("POST", "/api/v1/organizations/"): Case(None, lambda w, u: Call(body={"name": "Another team"})),
    ("GET", "/api/v1/organizations/"): Case("viewer", lambda w, u: Call({"id": _team(w, u)})),
    ("PUT", "/api/v1/organizations/"): Case(
        "admin", lambda w, u: Call(body={"id": _team(w, u), "name": "Team", "approval_policy": "always"})
    ),
    ("DELETE", "/api/v1/organizations/"): Case("owner", _organization_delete),
    ("GET", "/api/v1/organizations/members"): Case("viewer", lambda w, u: Call({"organization_id": _team(w, u)})),
    ("POST", "/api/v1/organizations/members"): Case(
        "admin",
        lambda w, u: Call({"organization_id": _team(w, u)}, {"email": "newcomer@example.com", "role": "member"}),
    ),
    ("PUT", "/api/v1/organizations/members"): Case(
        "admin",
        lambda w, u: Call({"organization_id": _team(w, u)}, {"email": w.colleague.email, "role": "approver"}),
    ),
    ("DELETE", "/api/v1/organizations/members"): Case(
        "admin", lambda w, u: Call({"organization_id": _team(w, u), "email": w.colleague.email})
    ),
    ("GET", "/api/v1/flow_requests/all"): Case(None, lambda w, u: Call()),
    ("GET", "/api/v1/flow_requests/"): Case("viewer", lambda w, u: Call({"id": w.flow_request.id})),
    ("POST", "/api/v1/flow_requests/"): Case(
        "member",
        lambda w, u: Call(body={"request_instructions": "Handle it.", "organization": _team(w, u)}),
        outsider=422,
    ),
    ("PUT", "/api/v1/flow_requests/"): Case(
        "member", lambda w, u: Call(body={"id": str(w.flow_request.id), "request_instructions": "Handle it again."})
    ),
    ("DELETE", "/api/v1/flow_requests/"): Case("member", lambda w, u: Call({"id": w.flow_request.id})),
    ("GET", "/api/v1/flows/all"): Case(None, lambda w, u: Call()),
    ("GET", "/api/v1/flows/"): Case("viewer", lambda w, u: Call({"id": w.flow.id})),
    ("GET", "/api/v1/flows/versions"): Case("viewer", lambda w, u: Call({"flow_id": w.flow.id})),
    ("GET", "/api/v1/flows/diff"): Case("viewer", lambda w, u: Call({"flow_id": w.flow.id, "from": 1, "to": 1})),
    ("POST", "/api/v1/flows/"): Case(
        "member", lambda w, u: Call(body=_flow_body(w, organization=_team(w, u))), outsider=422
    ),
    ("PUT", "/api/v1/flows/"): Case("member", lambda w, u: Call(body=_flow_body(w, id=str(w.flow.id)))),
    ("DELETE", "/api/v1/flows/"): Case("member", lambda w, u: Call({"id": w.flow.id})),
    ("GET", "/api/v1/flows/generate"): Case("member", lambda w, u: Call({"flow_request_id": w.flow_request.id})),
    ("POST", "/api/v1/flows/generate"): Case("member", lambda w, u: Call({"flow_request_id": w.flow_request.id})),
    ("POST", "/api/v1/flows/execute"): Case(
        "member", lambda w, u: Call({"flow_id": w.flow.id, "flow_request_id": w.flow_request.id})
    ),
    ("GET", "/api/v1/flows/export"): Case("viewer", lambda w, u: Call({"id": w.flow.id})),
    ("POST", "/api/v1/flows/import"): Case(
        "member",
        lambda w, u: Call(
            body={
                "neena_flow": 1,
                "name": "Imported",
                "organization": _team(w, u),
                "steps": [{"index": 0, "name": "Say", "task": {"integration": "core", "task": "Format Text"}}],
            }
        ),
        outsider=422,
    ),
    ("GET", "/api/v1/integrations/all"): Case(None, lambda w, u: Call()),
    ("GET", "/api/v1/task_definitions/all"): Case(None, lambda w, u: Call()),
    ("GET", "/api/v1/task_definitions/"): Case(None, lambda w, u: Call({"id": task_definition("Format Text").id})),
    ("GET", "/api/v1/webhook_trigger_definitions/all"): Case(None, lambda w, u: Call()),
    ("GET", "/api/v1/webhook_trigger_definitions/"): Case(
        None, lambda w, u: Call({"id": trigger_definition("Zendesk Ticket Created").id})
    ),
    ("GET", "/api/v1/integration_credentials/all"): Case(None, lambda w, u: Call()),
    ("POST", "/api/v1/integration_credentials/"): Case(
        "member",
        lambda w, u: Call(body={"integration_short_name": "trello", "api_key": "key", "organization": _team(w, u)}),
        outsider=422,
    ),
    # The colleague's credential: a member manages only their own (test_a_member_deletes_their_own_credential).
    ("DELETE", "/api/v1/integration_credentials/"): Case("admin", lambda w, u: Call({"id": w.credential.id})),
    ("GET", "/api/v1/integration_credentials/oauth2/authorize_url"): Case(
        "member",
        lambda w, u: Call({"integration_short_name": "slack", "organization": _team(w, u)}),
        outsider=422,
    ),
    ("POST", "/api/v1/integration_credentials/oauth2/code"): Case("member", _oauth2_code, outsider=422),
    ("GET", "/api/v1/mcp_servers/all"): Case(None, lambda w, u: Call()),
    ("GET", "/api/v1/mcp_servers/"): Case("viewer", lambda w, u: Call({"id": w.mcp_server.id})),
    ("POST", "/api/v1/mcp_servers/"): Case(
        "admin",
        lambda w, u: Call(
            body={
                "name": f"time-{u.pk.hex[:8]}",
                "transport": "stdio",
                "command": TIME_SERVER,
                "organization": _team(w, u),
            }
        ),
        outsider=422,
    ),
    ("DELETE", "/api/v1/mcp_servers/"): Case("admin", lambda w, u: Call({"id": w.mcp_server.id})),
    ("POST", "/api/v1/mcp_servers/sync"): Case("admin", lambda w, u: Call({"id": w.mcp_server.id})),
    ("GET", "/api/v1/flow_runs/all"): Case(None, lambda w, u: Call()),
    ("GET", "/api/v1/flow_runs/preview"): Case(None, lambda w, u: Call()),
    ("GET", "/api/v1/flow_runs/"): Case("viewer", lambda w, u: Call({"id": w.waiting_run.id})),
    ("GET", "/api/v1/flow_runs/with_flow_result"): Case("viewer", lambda w, u: Call({"id": w.waiting_run.id})),
    ("GET", "/api/v1/flow_runs/all_for_flow_id"): Case("viewer", lambda w, u: Call({"flow_id": w.flow.id})),
    ("POST", "/api/v1/flow_runs/"): Case(
        "member",
        lambda w, u: Call(body={"flow": str(w.flow.id), "flow_request": str(w.flow_request.id)}),
    ),
    ("PUT", "/api/v1/flow_runs/approve"): Case("approver", lambda w, u: Call({"flow_run_id": w.waiting_run.id}, {})),
    ("PUT", "/api/v1/flow_runs/reject"): Case("approver", lambda w, u: Call({"flow_run_id": w.waiting_run.id}, {})),
    ("POST", "/api/v1/flow_runs/cancel"): Case("member", lambda w, u: Call({"flow_run_id": w.waiting_run.id}, {})),
    ("POST", "/api/v1/flow_runs/retry"): Case("member", lambda w, u: Call({"flow_run_id": w.failed_run.id})),
    ("POST", "/api/v1/flow_runs/rerun"): Case("member", lambda w, u: Call({"flow_run_id": w.failed_run.id})),
    ("POST", "/api/v1/flow_runs/rerun_from"): Case(
        "member", lambda w, u: Call({"flow_run_id": w.failed_run.id, "task_operation_index": 0})
    ),
    ("POST", "/api/v1/flow_runs/retry_failed"): Case("member", lambda w, u: Call({"flow_id": w.flow.id})),
    ("GET", "/api/v1/flow_results/"): Case(
        "viewer",
        lambda w, u: Call(
            {
                "integration_short_name": w.result.integration_short_name,
                "integration_entity_id": w.result.integration_entity_id,
            }
        ),
    ),
    ("GET", "/api/v1/webhook_trigger_operations/all"): Case(None, lambda w, u: Call()),
    ("GET", "/api/v1/webhook_trigger_operations/"): Case("viewer", lambda w, u: Call({"id": w.operation.id})),
    ("POST", "/api/v1/webhook_trigger_operations/"): Case(
        "admin",
        lambda w, u: Call(
            body={
                "name": "Matrix operation",
                "webhook_trigger_definition": str(trigger_definition("Zendesk Ticket Created").id),
                "template_body": "Reply to <{ticket_id}>.",
                "organization": _team(w, u),
            }
        ),
        outsider=422,
    ),
    ("PUT", "/api/v1/webhook_trigger_operations/"): Case(
        "admin",
        lambda w, u: Call(
            body={"id": str(w.operation.id), "name": "Renamed", "template_body": "Reply to <{ticket_id}>."}
        ),
    ),
    ("DELETE", "/api/v1/webhook_trigger_operations/"): Case("admin", lambda w, u: Call({"id": w.operation.id})),
    ("POST", "/api/v1/webhook_trigger_operations/rotate_secret"): Case(
        "admin", lambda w, u: Call({"id": w.operation.id})
    ),
    ("GET", "/api/v1/webhook_trigger_runs/all"): Case(None, lambda w, u: Call()),
    ("GET", "/api/v1/webhook_trigger_runs/"): Case("viewer", lambda w, u: Call({"id": w.trigger_run.id})),
    # Members and outsiders get an empty list (tests/audit/test_api.py).
    ("GET", "/api/v1/audit_events/all"): Case(None, lambda w, u: Call()),
}


def router_endpoints() -> dict[tuple[str, str], tuple[str, str]]:
    """(method, path as documented) -> (router basename, viewset action), for every action the router serves."""
    endpoints = {}
    for prefix, viewset, basename in router.registry:
        for route in router.get_routes(viewset):
            for method, action in route.mapping.items():
                if not hasattr(viewset, action):
                    continue
                path = route.url.replace("{prefix}", prefix).replace("{url_path}", "").lstrip("^")
                path = path.removesuffix("(?:/)?$").removesuffix("/?$")
                if route.url.startswith("^{prefix}/{url_path}"):
                    path = f"{prefix}/{getattr(viewset, action).url_path}"
                elif route.url == "^{prefix}/?$":
                    path = f"{prefix}/"
                endpoints[(method.upper(), f"/api/v1/{path}")] = (basename, action)
    return endpoints


def test_every_endpoint_has_a_row():
    endpoints = router_endpoints()

    assert set(endpoints) == set(CASES), "endpoints and role matrix rows differ"
    assert set(endpoints.values()) <= set(ACTION_ROLES), "an action has no row in ACTION_ROLES"
    assert set(ACTION_ROLES) <= set(endpoints.values()), "ACTION_ROLES has a row for no action"


@pytest.fixture
def provider() -> Iterator[FakeOAuthProvider]:
    fake = FakeOAuthProvider()
    clients = {
        "slack": {
            "client_id": "neena-client",
            "client_secret": "neena-secret",
            "authorize_url": "https://slack.example/oauth/v2/authorize",
            "token_url": f"{fake.url}/token",
            "revoke_url": f"{fake.url}/revoke",
        }
    }
    with override_settings(NEENA_OAUTH2_CLIENTS=clients, NEENA_OAUTH2_REDIRECT_URI="http://127.0.0.1/callback"):
        yield fake
    fake.stop()


@pytest.fixture
def world(db: None, provider: FakeOAuthProvider, redis_url: str) -> World:
    users = {role: UserFactory(email=f"{role}@example.com") for role in ROLES}
    team = Organization.objects.create(name="Team")
    for role, user in users.items():
        add_member(user, team, role)
    colleague = UserFactory(email="colleague@example.com")
    add_member(colleague, team, "member")
    owner = users["owner"]
    flow = flow_create(
        user=owner,
        organization=team.id,
        name="Notify",
        task_operations=[
            step(0, "Format Text", template="Refund approved"),
            step(1, "Send Notification", "Tell ann@example.com"),
        ],
        dependencies=[DependencyDraft(0, 1)],
    )
    flow_request = flow_request_create(
        user=owner,
        organization=team.id,
        request_instructions="Get Zendesk ticket 123, summarize it, then add an internal note with the summary.",
    )
    waiting_run = run_steps(flow_execute(user=owner, flow=flow, flow_request=flow_request))
    assert waiting_run.status == FlowRun.Status.AWAITING_APPROVAL
    failed_run = FlowRunFactory(organization=team, flow=flow, flow_request=flow_request, status=FlowRun.Status.FAILED)
    failed_run.task_runs.filter(task_operation_index=1).update(status=TaskRun.Status.FAILED)
    operation = WebhookTriggerOperationFactory(organization=team)
    return World(
        team=team,
        users=users,
        colleague=colleague,
        flow=flow,
        flow_request=flow_request,
        waiting_run=waiting_run,
        failed_run=failed_run,
        result=FlowResultFactory(organization=team, flow_run=failed_run),
        credential=credential_upsert(
            user=colleague, integration_short_name="trello", api_key="colleague-key", organization=team.id
        ),
        operation=operation,
        trigger_run=TriggerRun.objects.create(
            organization=team, operation=operation, delivery_id="delivery-1", payload={"ticket": {"id": 1}}
        ),
        provider=provider,
        # Registered without its tools listed: syncing it (admins) starts the real mcp-server-time.
        mcp_server=McpServer.objects.create(organization=team, name="clock", transport="stdio", command=TIME_SERVER),
    )


def _client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(user=user, scopes=['read', 'write', 'approve'])}")
    return client


def _send(client: APIClient, method: str, path: str, call: Call) -> Any:
    url = f"{path}?{urlencode(call.query)}" if call.query else path
    body = "" if call.body is None else json.dumps(call.body)
    return client.generic(method, url, body, content_type="application/json")


def expected_status(case: Case, persona: str) -> int:
    if case.needs is None:
        return case.ok
    if persona == "outsider":
        return case.outsider
    return case.ok if ROLE_RANK[persona] >= ROLE_RANK[case.needs] else 403


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize(("method", "path"), sorted(CASES))
def test_role_matrix(world, method, path, persona):
    case = CASES[(method, path)]
    user = UserFactory(email="outsider@example.com") if persona == "outsider" else world.users[persona]

    response = _send(_client(user), method, path, case.build(world, user))

    expected = expected_status(case, persona)
    assert response.status_code == expected, f"{persona} {method} {path}: {response.status_code} {response.content!r}"
    if expected == 403:
        body = response.json()
        assert body["code"] == "role_required"
        assert f"needs the {case.needs} role in Team" in body["detail"]
