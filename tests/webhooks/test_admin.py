"""The webhook admin pages: operations (never their stored secret; added, changed and deleted through the operation
services) and trigger runs (read-only)."""

import pytest
from django.test import Client

from apps.accounts.models import Membership, User
from apps.webhooks.models import TriggerRun, WebhookTriggerOperation
from apps.webhooks.services import operations
from tests.factories import WebhookTriggerOperationFactory, staff_user, trigger_definition

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client():
    client = Client()
    client.force_login(User.objects.create_superuser("admin@example.com", "secret-password"))
    return client


def test_operation_and_trigger_run_pages_never_show_the_secret(admin_client, owner, organization):
    operation, secret = operations.trigger_operation_create(
        user=owner,
        name="New tickets",
        webhook_trigger_definition=trigger_definition("Zendesk Ticket Created").id,
        template_body="Reply to <{ticket_id}>.",
    )
    trigger_run = TriggerRun.objects.create(
        organization=organization, operation=operation, delivery_id="d-1", payload={"ticket": {"id": 1}}
    )

    pages = [
        admin_client.get("/admin/webhooks/webhooktriggeroperation/"),
        admin_client.get(f"/admin/webhooks/webhooktriggeroperation/{operation.id}/change/"),
        admin_client.get("/admin/webhooks/triggerrun/"),
        admin_client.get(f"/admin/webhooks/triggerrun/{trigger_run.id}/change/"),
    ]

    assert [page.status_code for page in pages] == [200, 200, 200, 200]
    for page in pages:
        assert secret not in page.content.decode()
        assert operation.signing_secret_ciphertext not in page.content.decode()
    assert b"d-1" in pages[2].content
    assert admin_client.get("/admin/webhooks/triggerrun/add/").status_code == 403


# --- Adding and changing an operation goes through the operation services ------------------------------------------

OPERATIONS = "/admin/webhooks/webhooktriggeroperation/"


@pytest.fixture
def editor(organization):
    return staff_user(
        "editor@example.com",
        "view_webhooktriggeroperation",
        "add_webhooktriggeroperation",
        "change_webhooktriggeroperation",
        "delete_webhooktriggeroperation",
        organizations=[organization],
        # Webhook operations take the admin role, in the admin as through the API.
        role=Membership.Role.ADMIN,
    )


@pytest.fixture
def editor_client(editor):
    client = Client()
    client.force_login(editor)
    return client


def operation_form(organization, definition="Generic Event Received", **fields):
    return {
        "name": "Orders",
        "organization": str(organization.id),
        "webhook_trigger_definition": str(trigger_definition(definition).id),
        "template_body": "Handle order <{entity_id}>.",
        "status": "active",
        "signing_secret": "",
        **fields,
    }


def form_errors(response):
    assert response.status_code == 200, response.status_code
    return {
        field: [str(message) for message in messages]
        for field, messages in response.context["adminform"].form.errors.items()
    }


def test_an_operation_added_in_the_admin_gets_a_secret_from_the_service_shown_once(editor_client, editor, organization):
    response = editor_client.post(f"{OPERATIONS}add/", operation_form(organization))

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    operation = WebhookTriggerOperation.objects.get()
    secret = operations.trigger_operation_secret(operation=operation)
    assert secret.startswith("whsec_")  # made for the definition's scheme, Standard Webhooks
    assert operation.signing_secret_ciphertext and secret not in operation.signing_secret_ciphertext
    assert (operation.organization, operation.status, operation.created_by_email) == (
        organization,
        "active",
        editor.email,
    )
    content = response.content.decode()
    assert f'<code id="signing-secret">{secret}</code>' in content
    assert operations.trigger_operation_inbound_url(operation_id=operation.id) in content
    # Shown this once: in no message (the session or a cookie), on no later page.
    later = [editor_client.get(OPERATIONS), editor_client.get(f"{OPERATIONS}{operation.id}/change/")]
    for page in later:
        assert page.status_code == 200
        assert secret not in page.content.decode()
        assert not list(page.context["messages"])


def test_a_provider_secret_given_in_the_admin_is_checked_and_stored_encrypted(editor_client, organization):
    refused = editor_client.post(f"{OPERATIONS}add/", operation_form(organization, signing_secret="not-a-whsec-secret"))
    zendesk = editor_client.post(
        f"{OPERATIONS}add/",
        operation_form(
            organization,
            definition="Zendesk Ticket Created",
            template_body="Reply to <{ticket_id}>.",
            signing_secret="zendesk-issued-secret-123",
        ),
    )

    assert "signing_secret" in form_errors(refused)
    assert "not-a-whsec-secret" not in refused.content.decode()  # a secret box never sends the value back
    assert zendesk.status_code == 200
    operation = WebhookTriggerOperation.objects.get()
    assert operations.trigger_operation_secret(operation=operation) == "zendesk-issued-secret-123"


def test_an_unknown_template_field_is_a_form_error_and_saves_nothing(editor_client, organization):
    response = editor_client.post(f"{OPERATIONS}add/", operation_form(organization, template_body="Hi <{nope}>."))

    errors = form_errors(response)
    assert "template_body" in errors
    assert "<{nope}>" in errors["template_body"][0]
    assert not WebhookTriggerOperation.objects.exists()


def test_the_organization_must_be_one_of_the_users(editor_client, outsider_organization):
    response = editor_client.post(f"{OPERATIONS}add/", operation_form(outsider_organization))

    assert "organization" in form_errors(response)
    assert not WebhookTriggerOperation.objects.exists()


def test_changing_an_operation_goes_through_the_update_service(editor_client, editor, owner, organization):
    operation, secret = operations.trigger_operation_create(
        user=owner,
        name="Orders",
        webhook_trigger_definition=trigger_definition("Generic Event Received").id,
        template_body="Handle <{entity_id}>.",
    )
    WebhookTriggerOperation.objects.filter(id=operation.id).update(status="failed", consecutive_failures=5)
    page = f"{OPERATIONS}{operation.id}/change/"

    refused = editor_client.post(page, {"name": "Orders", "template_body": "Hi <{nope}>.", "status": ""})
    changed = editor_client.post(page, {"name": "Orders v2", "template_body": "Do <{text}>.", "status": ""})

    assert "template_body" in form_errors(refused)
    assert changed.status_code == 302
    operation.refresh_from_db()
    assert (operation.name, operation.template_body) == ("Orders v2", "Do <{text}>.")
    # The update service's rules: a failed operation becomes active, the failure count is cleared, the secret kept.
    assert (operation.status, operation.consecutive_failures) == ("active", 0)
    assert operation.modified_by_email == editor.email
    assert operations.trigger_operation_secret(operation=operation) == secret


def test_deleting_an_operation_goes_through_the_service(editor_client, owner, organization):
    operation = WebhookTriggerOperationFactory(organization=organization)
    TriggerRun.objects.create(organization=organization, operation=operation, delivery_id="d-1", payload={})

    response = editor_client.post(f"{OPERATIONS}{operation.id}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not WebhookTriggerOperation.objects.exists()
    assert not TriggerRun.objects.exists()
