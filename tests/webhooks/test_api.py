"""``/api/v1/webhook_trigger_operations/``: create (status inactive by default; the answer carries the inbound URL and
the signing secret, shown only then and on rotation), read, list, update (reactivating a failed operation), rotate
the secret, delete, and the check that ``<{field}>`` placeholders name the definition's event fields."""

import pytest
from django.test import override_settings

from apps.accounts.models import Membership
from apps.webhooks.models import WebhookTriggerOperation
from apps.webhooks.services import operations
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


# --- The signing secret and the inbound URL -------------------------------------------------------------------------


def test_create_answers_the_inbound_url_and_the_secret_once(api):
    created = _create(api).json()

    read = api.get(f"/api/v1/webhook_trigger_operations/?id={created['id']}").json()
    listed = api.get("/api/v1/webhook_trigger_operations/all").json()

    assert created["inbound_url"] == f"http://127.0.0.1:8000/api/v1/webhooks/{created['id']}/"
    assert len(created["signing_secret"]) >= 40
    assert "signing_secret" not in read
    assert all("signing_secret" not in item for item in listed)
    assert read["inbound_url"] == created["inbound_url"]
    assert (read["consecutive_failures"], read["last_failure_reason"]) == (0, "")
    stored = WebhookTriggerOperation.objects.get(id=created["id"])
    assert created["signing_secret"] not in stored.signing_secret_ciphertext
    assert operations.trigger_operation_secret(operation=stored) == created["signing_secret"]


@override_settings(NEENA_PUBLIC_BASE_URL="https://neena.example.com/")
def test_the_inbound_url_is_built_on_the_public_base_url(api):
    created = _create(api).json()

    assert created["inbound_url"] == f"https://neena.example.com/api/v1/webhooks/{created['id']}/"


def test_every_operation_gets_its_own_secret(api):
    assert _create(api).json()["signing_secret"] != _create(api).json()["signing_secret"]


def test_rotate_answers_a_new_secret_once(api):
    created = _create(api).json()

    rotated = api.post(f"/api/v1/webhook_trigger_operations/rotate_secret?id={created['id']}")
    read = api.get(f"/api/v1/webhook_trigger_operations/?id={created['id']}").json()

    assert rotated.status_code == 200
    assert rotated.json()["signing_secret"] not in ("", created["signing_secret"])
    assert rotated.json()["id"] == created["id"]
    assert "signing_secret" not in read
    stored = WebhookTriggerOperation.objects.get(id=created["id"])
    assert operations.trigger_operation_secret(operation=stored) == rotated.json()["signing_secret"]


def test_rotate_needs_the_write_scope_and_an_id(api, owner, make_client):
    created = _create(api).json()
    reader = make_client(owner, scopes=("read",))

    assert reader.post(f"/api/v1/webhook_trigger_operations/rotate_secret?id={created['id']}").status_code == 403
    missing = api.post("/api/v1/webhook_trigger_operations/rotate_secret")
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["query", "id"]


# --- Update -----------------------------------------------------------------------------------------------------------


def _put(api, operation_id, **fields):
    body = {"id": str(operation_id), "name": "Renamed", "template_body": "Reply to <{ticket_id}>.", **fields}
    return api.put("/api/v1/webhook_trigger_operations/", body, format="json")


def test_update_replaces_name_template_and_status(api, teammate, teammate_api):
    created = _create(api).json()
    Membership.objects.filter(user=teammate).update(role=Membership.Role.ADMIN)

    response = _put(teammate_api, created["id"], status="active")

    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["template_body"], body["status"]) == ("Renamed", "Reply to <{ticket_id}>.", "active")
    assert body["modified_by_email"] == teammate.email
    assert body["created_by_email"] == created["created_by_email"]
    assert body["webhook_trigger_definition"] == created["webhook_trigger_definition"]
    assert "signing_secret" not in body


def test_a_member_who_is_not_an_admin_cannot_change_an_operation_nor_its_secret(api, teammate_api):
    created = _create(api).json()

    responses = [
        _put(teammate_api, created["id"], status="active"),
        teammate_api.post(f"/api/v1/webhook_trigger_operations/rotate_secret?id={created['id']}"),
        teammate_api.delete(f"/api/v1/webhook_trigger_operations/?id={created['id']}"),
    ]

    assert [response.status_code for response in responses] == [403, 403, 403]
    assert {response.json()["code"] for response in responses} == {"role_required"}
    assert "needs the admin role" in responses[0].json()["detail"]
    assert WebhookTriggerOperation.objects.get(id=created["id"]).status == created["status"]


def test_update_without_status_keeps_it(api):
    created = _create(api, status="active").json()

    assert _put(api, created["id"]).json()["status"] == "active"


def test_update_checks_placeholders_as_create_does(api):
    created = _create(api).json()

    response = _put(api, created["id"], template_body="Reply to <{ticket_id}> about <{weather}>")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "template_body"]
    assert "<{weather}>" in response.json()["detail"][0]["msg"]
    assert WebhookTriggerOperation.objects.get(id=created["id"]).name == created["name"]


def test_updating_a_failed_operation_reactivates_it(api):
    created = _create(api, status="active").json()
    WebhookTriggerOperation.objects.filter(id=created["id"]).update(
        status="failed", consecutive_failures=5, last_failure_reason="The flow could not be planned."
    )

    body = _put(api, created["id"]).json()

    assert body["status"] == "active"
    assert body["consecutive_failures"] == 0
    assert body["last_failure_reason"] == "The flow could not be planned."  # kept for the record


def test_a_failed_operation_can_be_updated_to_inactive(api):
    created = _create(api, status="active").json()
    WebhookTriggerOperation.objects.filter(id=created["id"]).update(status="failed", consecutive_failures=5)

    body = _put(api, created["id"], status="inactive").json()

    assert (body["status"], body["consecutive_failures"]) == ("inactive", 0)


@pytest.mark.parametrize(
    ("fields", "location"),
    [
        ({"id": "not-a-uuid"}, ["body", "id"]),
        ({"name": ""}, ["body", "name"]),
        ({"status": "paused"}, ["body", "status"]),
    ],
)
def test_invalid_update_is_422(api, fields, location):
    created = _create(api).json()

    response = _put(api, created["id"], **fields)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == location


def test_update_of_an_unknown_operation_is_404(api):
    assert _put(api, "00000000-0000-0000-0000-000000000000").status_code == 404


def test_a_providers_own_signing_secret_can_be_set_and_verifies_deliveries(api, client):
    from tests.webhooks.signing import body_of, zendesk_headers, zendesk_ticket_created

    provider_secret = "zendesk-issued-secret-0123456789"
    created = _create(api, status="active", signing_secret=provider_secret).json()
    body = body_of(zendesk_ticket_created())

    accepted = client.post(
        f"/api/v1/webhooks/{created['id']}/",
        body,
        content_type="application/json",
        headers=zendesk_headers(provider_secret, body),
    )
    updated = api.put(
        "/api/v1/webhook_trigger_operations/",
        {
            "id": created["id"],
            "name": "x",
            "template_body": "<{ticket_id}>",
            "signing_secret": "another-secret-0123456",
        },
        format="json",
    )
    refused = client.post(
        f"/api/v1/webhooks/{created['id']}/",
        body,
        content_type="application/json",
        headers=zendesk_headers(provider_secret, body),
    )

    assert created["signing_secret"] == provider_secret
    assert accepted.status_code == 202, accepted.content
    assert "signing_secret" not in updated.json()
    assert refused.status_code == 401
