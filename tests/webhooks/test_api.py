"""``/api/v1/webhook_trigger_operations/``: create (status inactive by default), read, list, delete, and the check
that ``<{field}>`` placeholders name the definition's event fields."""

import pytest

from apps.webhooks.models import WebhookTriggerOperation
from tests.factories import WebhookTriggerOperationFactory, trigger_definition

pytestmark = pytest.mark.django_db


def _create(api, **overrides):
    body = {
        "name": "New ticket",
        "webhook_trigger_definition": str(trigger_definition("Zendesk Ticket Created").id),
        "template_body": "Summarise ticket <{ticket_id}> (<{subject}>) and draft a reply to <{requester_email}>.",
    }
    body.update(overrides)
    return api.post("/api/v1/webhook_trigger_operations/", body, format="json")


def test_create_defaults_to_inactive(api, organization, owner):
    response = _create(api)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "inactive"
    assert body["organization"] == str(organization.id)
    assert body["created_by_email"] == owner.email
    assert {"name", "webhook_trigger_definition", "template_body", "id", "created_date", "modified_date"} <= set(body)


def test_create_active(api):
    assert _create(api, status="active").json()["status"] == "active"


@pytest.mark.parametrize(
    ("overrides", "location"),
    [
        ({"template_body": "Reply to <{ticket_id}> about <{weather}>"}, ["body", "template_body"]),
        ({"status": "paused"}, ["body", "status"]),
        (
            {"webhook_trigger_definition": "00000000-0000-0000-0000-000000000000"},
            ["body", "webhook_trigger_definition"],
        ),
        ({"name": ""}, ["body", "name"]),
    ],
)
def test_invalid_operation_is_422(api, overrides, location):
    response = _create(api, **overrides)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == location
    assert not WebhookTriggerOperation.objects.exists()


def test_unknown_placeholder_is_named(api):
    response = _create(api, template_body="<{ticket_id}> <{weather}>")

    assert "<{weather}>" in response.json()["detail"][0]["msg"]


def test_read_list_delete(api, organization):
    operation = WebhookTriggerOperationFactory(organization=organization)

    read = api.get(f"/api/v1/webhook_trigger_operations/?id={operation.id}")
    listed = api.get("/api/v1/webhook_trigger_operations/all")
    deleted = api.delete(f"/api/v1/webhook_trigger_operations/?id={operation.id}")

    assert read.json()["template_body"] == operation.template_body
    assert [item["id"] for item in listed.json()] == [str(operation.id)]
    assert deleted.json() == read.json()
    assert not WebhookTriggerOperation.objects.exists()
