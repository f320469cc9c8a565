"""The read-only catalogue endpoints."""

import pytest
from django.utils import timezone

from apps.integrations.models import TaskDefinition
from tests.factories import task_definition, trigger_definition

pytestmark = pytest.mark.django_db


def test_integrations_all_lists_the_catalogue(api):
    response = api.get("/api/v1/integrations/all")

    assert response.status_code == 200
    zendesk = next(item for item in response.json() if item["short_name"] == "zendesk")
    assert set(zendesk) >= {"id", "name", "short_name", "class_name", "auth_type", "created_date", "modified_date"}
    assert zendesk["class_name"] == "ZendeskIntegration"


def test_task_definitions_all_pages_with_skip_and_limit(api):
    total = TaskDefinition.objects.filter(deleted_at__isnull=True).count()

    everything = api.get("/api/v1/task_definitions/all?limit=1000").json()
    page = api.get("/api/v1/task_definitions/all?skip=2&limit=3").json()

    assert len(everything) == total
    assert [item["id"] for item in page] == [item["id"] for item in everything[2:5]]


def test_task_definition_has_the_documented_shape(api):
    definition = task_definition("Send Notification")

    response = api.get(f"/api/v1/task_definitions/?id={definition.id}")

    assert response.status_code == 200
    body = response.json()
    assert body["task_name"] == "Send Notification"
    assert body["side_effect"] is True
    assert body["belongs_to_integration"]["short_name"] == "core"
    assert body["parameters"][0] == {
        "name": "recipient",
        "data_type": "string",
        "position": 1,
        "doc_string": "Who to notify: an email address or a name.",
        "optional": False,
        "default": None,
    }
    for field in ("input_type", "input_yml", "python_method_name", "output_type", "output_yml", "output_is_list"):
        assert field in body
    assert body["deleted_at"] is None


def test_deleted_definitions_are_readable_by_id_but_not_listed(api):
    definition = task_definition("Format Text")
    TaskDefinition.objects.filter(id=definition.id).update(deleted_at=timezone.now())

    listed = {item["id"] for item in api.get("/api/v1/task_definitions/all?limit=1000").json()}
    response = api.get(f"/api/v1/task_definitions/?id={definition.id}")

    assert str(definition.id) not in listed
    assert response.status_code == 200
    assert response.json()["deleted_at"] is not None


def test_unknown_task_definition_is_404(api):
    assert api.get("/api/v1/task_definitions/?id=00000000-0000-0000-0000-000000000000").status_code == 404


def test_webhook_trigger_definitions(api):
    definition = trigger_definition("Zendesk Ticket Created")

    listed = api.get("/api/v1/webhook_trigger_definitions/all").json()
    body = api.get(f"/api/v1/webhook_trigger_definitions/?id={definition.id}").json()

    assert str(definition.id) in {item["id"] for item in listed}
    assert body["trigger_name"] == "Zendesk Ticket Created"
    ticket_id = next(field for field in body["event_fields"] if field["name"] == "ticket_id")
    assert ticket_id["json_path"] == "$.ticket.id"
    assert body["entity_id_field"] == "ticket_id"


def test_catalogue_is_read_only(api):
    assert api.post("/api/v1/task_definitions/", {}, format="json").status_code == 405
    assert api.delete(f"/api/v1/task_definitions/?id={task_definition('Format Text').id}").status_code == 405
