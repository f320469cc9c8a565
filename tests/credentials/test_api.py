"""``/api/v1/integration_credentials/``: create-or-update, list, delete; secrets encrypted and never returned."""

import json

import pytest

from apps.credentials.encryption import decrypt_json
from apps.credentials.models import IntegrationCredential

pytestmark = pytest.mark.django_db

SECRET = "zd-secret-token-123"


def _create(api, **overrides):
    body = {"integration_short_name": "zendesk", "api_key": SECRET, "config": {"subdomain": "acme"}}
    body.update(overrides)
    return api.post("/api/v1/integration_credentials/", body, format="json")


def test_create_stores_the_secret_encrypted_and_never_returns_it(api, owner, organization):
    response = _create(api)

    assert response.status_code == 200
    body = response.json()
    assert body["integration_short_name"] == "zendesk"
    assert body["owner_email"] == owner.email
    assert body["organization"] == str(organization.id)
    assert body["secret_fields"] == ["api_key"]
    assert body["config"] == {"subdomain": "acme"}
    assert body["status"] == "active"
    assert SECRET not in json.dumps(body)
    credential = IntegrationCredential.objects.get()
    assert SECRET not in credential.secret_ciphertext
    assert decrypt_json(credential.secret_ciphertext) == {"api_key": SECRET}


def test_second_create_updates_the_same_credential(api):
    first = _create(api).json()

    second = _create(api, api_key="rotated", credentials={"email": "agent@acme.com"}).json()

    assert second["id"] == first["id"]
    assert second["secret_fields"] == ["api_key", "email"]
    assert IntegrationCredential.objects.count() == 1
    assert decrypt_json(IntegrationCredential.objects.get().secret_ciphertext)["api_key"] == "rotated"


def test_list_and_delete_never_show_the_secret(api):
    created = _create(api).json()

    listed = api.get("/api/v1/integration_credentials/all")
    deleted = api.delete(f"/api/v1/integration_credentials/?id={created['id']}")

    assert [item["id"] for item in listed.json()] == [created["id"]]
    assert SECRET not in listed.content.decode()
    assert deleted.status_code == 200
    assert deleted.json()["id"] == created["id"]
    assert SECRET not in deleted.content.decode()
    assert not IntegrationCredential.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "location", "kind"),
    [
        ({"integration_short_name": "nope"}, ["body", "integration_short_name"], "not_found"),
        ({"integration_short_name": None}, ["body", "integration"], "missing"),
        ({"integration_short_name": "slack"}, ["body", "integration_short_name"], "unsupported_auth_type"),
        ({"integration_short_name": "core"}, ["body", "integration_short_name"], "unsupported_auth_type"),
        ({"api_key": None}, ["body", "api_key"], "missing"),
    ],
)
def test_invalid_credentials_are_422(api, overrides, location, kind):
    response = _create(api, **overrides)

    assert response.status_code == 422
    assert [(item["loc"], item["type"]) for item in response.json()["detail"]] == [(location, kind)]
    assert not IntegrationCredential.objects.exists()


def test_integration_may_be_named_by_id(api):
    from apps.integrations.models import Integration

    trello = Integration.objects.get(short_name="trello")

    response = _create(api, integration_short_name=None, integration=str(trello.id))

    assert response.json()["integration"] == str(trello.id)


# --- Addresses in the config: an early 422, before the egress guard refuses them when connecting -----------------


@pytest.mark.parametrize(
    ("integration", "config", "location", "kind"),
    [
        ("llm", {"base_url": "http://127.0.0.1:8080/v1"}, ["body", "config", "base_url"], "address_refused"),
        ("llm", {"base_url": "http://[::ffff:169.254.169.254]/"}, ["body", "config", "base_url"], "address_refused"),
        ("llm", {"base_url": "http://localhost:11434/v1"}, ["body", "config", "base_url"], "address_refused"),
        ("llm", {"base_url": "ftp://models.example.com/"}, ["body", "config", "base_url"], "invalid"),
        ("llm", {"base_url": "api.example.com/v1"}, ["body", "config", "base_url"], "invalid"),
        ("llm", {"base_url": ["http://a"]}, ["body", "config", "base_url"], "invalid"),
        ("smtp", {"host": "10.0.0.25", "from_address": "a@b.c"}, ["body", "config", "host"], "address_refused"),
        ("smtp", {"host": "::1", "from_address": "a@b.c"}, ["body", "config", "host"], "address_refused"),
    ],
)
def test_a_config_address_the_guard_would_refuse_is_422(api, integration, config, location, kind):
    response = _create(api, integration_short_name=integration, config=config)

    assert response.status_code == 422
    assert [(item["loc"], item["type"]) for item in response.json()["detail"]] == [(location, kind)]
    assert not IntegrationCredential.objects.exists()


@pytest.mark.parametrize(
    ("integration", "config"),
    [
        ("llm", {"base_url": "https://api.openai.com/v1"}),
        ("llm", {"base_url": "http://models.internal:8000/v1"}),  # a name: checked when connecting
        ("llm", {"base_url": "http://10.0.0.5:8000/v1"}),  # allow-listed
        ("smtp", {"host": "10.0.0.5", "from_address": "a@b.c"}),
        ("smtp", {"host": "smtp.example.com", "from_address": "a@b.c"}),
    ],
)
def test_public_names_and_allow_listed_addresses_are_stored(api, settings, integration, config):
    settings.NEENA_HTTP_ALLOWLIST = ["10.0.0.5"]

    response = _create(api, integration_short_name=integration, config=config)

    assert response.status_code == 200, response.json()
    assert response.json()["config"] == config
