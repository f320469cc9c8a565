"""The webhook admin pages: operations (never their secret) and trigger runs (read-only)."""

import pytest
from django.test import Client

from apps.accounts.models import User
from apps.webhooks.models import TriggerRun
from apps.webhooks.services import operations
from tests.factories import trigger_definition

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
