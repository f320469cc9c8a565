"""The credential admin goes through the credential services: a credential added here is the staff user's own, its
secret encrypted by ``credential_upsert``; what the API refuses is a form error; deleting calls ``credential_delete``
(which revokes OAuth2 tokens, outside any transaction); no page shows a secret, not even after a form error.

Persona: ``keeper`` (staff with the credential permissions, a member of the owner's organization).
"""

import pytest
from django.test import Client

from apps.accounts.models import Membership
from apps.credentials.encryption import decrypt_json
from apps.credentials.models import IntegrationCredential
from apps.credentials.services.credentials import credential_upsert
from apps.integrations.models import Integration
from tests.factories import staff_user

pytestmark = pytest.mark.django_db

CREDENTIALS = "/admin/credentials/integrationcredential/"
SECRET = "zd-secret-token-123"


@pytest.fixture
def keeper(organization):
    return staff_user(
        "keeper@example.com",
        "view_integrationcredential",
        "add_integrationcredential",
        "change_integrationcredential",
        "delete_integrationcredential",
        organizations=[organization],
        # Deleting other members' credentials takes the admin role, in the admin as through the API.
        role=Membership.Role.ADMIN,
    )


@pytest.fixture
def keeper_client(keeper):
    client = Client()
    client.force_login(keeper)
    return client


def credential_form(organization, short_name="zendesk", **fields):
    return {
        "organization": str(organization.id),
        "integration": str(Integration.objects.get(short_name=short_name).id),
        "api_key": SECRET,
        "credentials": "",
        "config": '{"subdomain": "acme"}',
        **fields,
    }


def form_errors(response):
    assert response.status_code == 200, response.status_code
    form = response.context["adminform"].form
    return {field: [str(message) for message in messages] for field, messages in form.errors.items()}


def test_a_credential_added_in_the_admin_is_the_users_own_and_encrypted(keeper_client, keeper, organization):
    response = keeper_client.post(f"{CREDENTIALS}add/", credential_form(organization))

    assert response.status_code == 302
    credential = IntegrationCredential.objects.get()
    assert (credential.owner, credential.organization, credential.integration.short_name) == (
        keeper,
        organization,
        "zendesk",
    )
    assert SECRET not in credential.secret_ciphertext
    assert decrypt_json(credential.secret_ciphertext) == {"api_key": SECRET}
    assert credential.secret_fields == ["api_key"]
    assert credential.config == {"subdomain": "acme"}
    page = keeper_client.get(f"{CREDENTIALS}{credential.id}/change/")
    assert page.status_code == 200
    assert SECRET not in page.content.decode()
    assert credential.secret_ciphertext not in page.content.decode()
    # Never changed here (adding again replaces the secret): a record with no inputs.
    assert page.context["title"] == "View integration credential"
    assert 'name="api_key"' not in page.content.decode()
    assert keeper_client.post(f"{CREDENTIALS}{credential.id}/change/", {"api_key": "x"}).status_code == 403


def test_adding_again_replaces_the_users_secret_as_the_api_does(keeper_client, organization):
    keeper_client.post(f"{CREDENTIALS}add/", credential_form(organization))
    keeper_client.post(f"{CREDENTIALS}add/", credential_form(organization, api_key="rotated"))

    assert decrypt_json(IntegrationCredential.objects.get().secret_ciphertext) == {"api_key": "rotated"}


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"api_key": "", "credentials": ""}, "api_key", "Give the api_key"),
        ({"short_name": "llm", "config": '{"base_url": "http://127.0.0.1:9/v1"}'}, "config", "base_url"),
        ({"short_name": "slack"}, "integration", "valid choice"),  # OAuth2: through the authorize URL
        ({"credentials": '{"token": ["not", "text"]}'}, "credentials", ""),
    ],
)
def test_what_the_api_refuses_is_a_form_error_that_shows_no_secret(keeper_client, organization, fields, field, words):
    short_name = fields.pop("short_name", "zendesk")

    response = keeper_client.post(
        f"{CREDENTIALS}add/",
        {**credential_form(organization, short_name=short_name, credentials='{"token": "tok-secret-456"}'), **fields},
    )

    errors = form_errors(response)
    assert field in errors, errors
    assert words in " ".join(errors[field])
    assert not IntegrationCredential.objects.exists()
    assert SECRET not in response.content.decode()
    assert "tok-secret-456" not in response.content.decode()


def test_the_organization_must_be_one_of_the_users(keeper_client, outsider_organization):
    response = keeper_client.post(f"{CREDENTIALS}add/", credential_form(outsider_organization))

    assert "organization" in form_errors(response)
    assert not IntegrationCredential.objects.exists()


def test_credentials_are_deleted_through_the_service_by_an_action(keeper_client, owner, organization):
    credential = credential_upsert(user=owner, integration_short_name="trello", api_key="trello-key")

    changelist = keeper_client.get(CREDENTIALS)
    delete_page = keeper_client.post(f"{CREDENTIALS}{credential.id}/delete/", {"post": "yes"})
    response = keeper_client.post(
        CREDENTIALS,
        {"action": "delete_selected_credentials", "_selected_action": [str(credential.id)], "index": 0},
        follow=True,
    )

    actions = [name for name, _ in changelist.context["action_form"].fields["action"].choices]
    assert "delete_selected_credentials" in actions and "delete_selected" not in actions
    assert delete_page.status_code == 403  # Django's delete page runs in a transaction; the service may call out
    assert "Deleted 1 credential." in [str(message) for message in response.context["messages"]]
    assert not IntegrationCredential.objects.exists()
