"""The original API's documented calls, replayed verbatim, answer as documented, with every documented field.

Each example call of the reference (``neena-api-reference.md``) and the fuller docs (``neena-docs/*.md``) is sent as
written: its method, its path (under ``/api/v1``, where every path lives here), its query string, its headers (the
reference's ``Authorization: Bearer``, the fuller docs' ``api_key``) and its body, byte for byte except the
placeholders the docs ask readers to replace (``uuid-of-flow``, ``YOUR_API_KEY``, and the docs' sample UUID, which
stands for whichever object its field names). It must succeed, and where the docs show the answer, ours must carry
every field name shown there, at every depth. Fields may be added to the API, never removed: this is what catches
one removed.
"""

import json
from dataclasses import dataclass
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import Organization, User
from apps.accounts.services import api_key_create
from apps.integrations.connectors.base import SignatureScheme
from apps.integrations.models import Integration, WebhookTriggerDefinition
from apps.runs.services.run_creation import flow_execute
from tests.factories import (
    FlowRequestFactory,
    FlowResultFactory,
    UserFactory,
    WebhookTriggerOperationFactory,
    chain_flow,
    personal_organization,
    task_definition,
)
from tests.reference import Example, examples, missing_fields, reference_dir
from tests.runs.flows import make_flow, make_request, run_steps, step, waiting_run

pytestmark = pytest.mark.django_db

EXAMPLES = examples()
# The reference elides these bodies ("task_operations": [...]); the fuller docs' versions of the same calls, with
# whole bodies, are replayed instead.
ELIDED = {"neena-api-reference.md: Create Flow", "neena-api-reference.md: Update Flow"}
# The docs' one sample UUID, used for every kind of id in their bodies.
SAMPLE_UUID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


def test_the_reference_is_found_and_read_whole():
    assert reference_dir() is not None, "shared/reference not found beside the checkout; set NEENA_REFERENCE_DIR"
    assert len(EXAMPLES) >= 45
    assert {example.id for example in EXAMPLES if example.body_is_elided} == ELIDED
    assert sum(example.answer is not None for example in EXAMPLES) >= 25


@dataclass
class World:
    """One organization holding one of everything the examples name, and the owner's token."""

    token: str
    user: User
    organization: Organization
    by_placeholder: dict[str, str]
    by_field: dict[str, str]


def _documented_trigger_definition() -> WebhookTriggerDefinition:
    """The fuller docs' own example definition ("New Issue Created", its event fields as documented), which their
    operation example names; on the generic webhook integration, whose signature scheme any sender can follow."""
    (documented,) = [
        example.answer
        for example in EXAMPLES
        if example.title == "Read Webhook Trigger Definition" and isinstance(example.answer, dict)
    ]
    return WebhookTriggerDefinition.objects.create(
        integration=Integration.objects.get(short_name="webhook"),
        trigger_name=documented["trigger_name"],
        python_method_name=documented["python_method_name"],
        description=documented["description"],
        event_fields=documented["event_fields"],
        entity_id_field="issue_id",
        signature_scheme=SignatureScheme.STANDARD_WEBHOOKS,
    )


@pytest.fixture
def world() -> World:
    # The docs' user: create_if_not_exists takes only the caller's own email.
    user = UserFactory(email="user@example.com", full_name="John Doe")
    organization = personal_organization(user)
    flow = chain_flow(organization)
    other_flow = chain_flow(organization)
    flow_request = FlowRequestFactory(
        organization=organization,
        flow=flow,
        request_instructions="Get Zendesk ticket 123, summarize it, then add an internal note with the summary.",
    )
    # The runs have requests of their own: the request examples delete theirs, which a run's request cannot be.
    finished_flow = make_flow(user, [step(0, "Format Text", template="Done")], [])
    finished = run_steps(flow_execute(user=user, flow=finished_flow, flow_request=make_request(user)))
    result = FlowResultFactory(organization=organization, flow_run=finished)
    parked = waiting_run(user)
    operation = WebhookTriggerOperationFactory(organization=organization)
    definition = _documented_trigger_definition()
    ids = {
        "uuid-of-flow": flow.id,
        "uuid-of-new-flow": other_flow.id,
        "uuid-of-flow-request": flow_request.id,
        "uuid-of-organization": organization.id,
        "uuid-of-task-definition": task_definition("Format Text").id,
        "uuid-of-task-definition-1": task_definition("Format Text").id,
        "uuid-of-task-definition-2": task_definition("Send Notification").id,
        "uuid-of-flow-run": finished.id,
        "uuid-of-trigger-definition": definition.id,
        "uuid-of-webhook-trigger-definition": definition.id,
        "uuid-of-webhook-trigger-operation": operation.id,
    }
    by_placeholder = {name: str(value) for name, value in ids.items()}
    by_placeholder |= {
        "entity-id": result.integration_entity_id,
        "integration_short_name": result.integration_short_name,
        # Approving needs a run that waits for approval; the other run examples read the finished one.
        "uuid-of-parked-flow-run": str(parked.id),
    }
    by_field = {
        "id": str(flow_request.id),
        "flow": str(flow.id),
        "flow_request": str(flow_request.id),
        "organization": str(organization.id),
    }
    token = api_key_create(user=user, scopes=("read", "write", "approve"))
    return World(token, user, organization, by_placeholder, by_field)


def _replace(value: Any, world: World, field: str | None = None) -> Any:
    """The body with the docs' placeholders replaced by the world's ids (the sample UUID by the field it is in)."""
    if isinstance(value, dict):
        return {name: _replace(item, world, name) for name, item in value.items()}
    if isinstance(value, list):
        return [_replace(item, world, field) for item in value]
    if value == SAMPLE_UUID and field in world.by_field:
        return world.by_field[field]
    if isinstance(value, str) and value in world.by_placeholder:
        return world.by_placeholder[value]
    return value


def _query(example: Example, world: World) -> str:
    pairs = []
    for pair in filter(None, example.query.split("&")):
        name, _, value = pair.partition("=")
        if example.path.endswith("/approve") and value == "uuid-of-flow-run":
            value = "uuid-of-parked-flow-run"
        pairs.append(f"{name}={world.by_placeholder.get(value, value)}")
    return "&".join(pairs)


def _send(example: Example, world: World) -> Any:
    headers, content_type = {}, "application/json"
    for name, value in example.headers:
        value = value.replace("YOUR_ACCESS_TOKEN", world.token).replace("YOUR_API_KEY", world.token)
        if name.lower() == "content-type":
            content_type = value
        else:
            headers["HTTP_" + name.upper().replace("-", "_")] = value
    query = _query(example, world)
    url = f"{example.path}?{query}" if query else example.path
    body = "" if example.body is None else json.dumps(_replace(example.body, world))
    # Most of the fuller docs' curl calls name no Content-Type (curl's -d would then say form-urlencoded); the Python
    # and JavaScript examples of the same sections send the body as JSON, and so does this.
    return APIClient().generic(example.method, url, data=body, content_type=content_type, **headers)


REPLAYED = [example for example in EXAMPLES if not example.body_is_elided]


@pytest.mark.parametrize("example", REPLAYED, ids=[example.id for example in REPLAYED])
def test_every_documented_call_succeeds_as_written(world, example):
    response = _send(example, world)

    assert response.status_code == 200, response.content


DOCUMENTED_ANSWERS = [example for example in REPLAYED if example.answer is not None]


@pytest.mark.parametrize("example", DOCUMENTED_ANSWERS, ids=[example.id for example in DOCUMENTED_ANSWERS])
def test_every_documented_answer_field_is_in_ours(world, example):
    response = _send(example, world)

    assert response.status_code == 200, response.content
    assert missing_fields(example.answer, response.json()) == []
