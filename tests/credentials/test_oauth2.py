"""Connecting an integration through OAuth2 against a fake provider on 127.0.0.1: authorize URL (which writes
nothing), code exchange with PKCE and a single-use state (spent even by a failed exchange), refresh before expiry (one
refresh however many workers want it; a refused refresh marks the credential broken), revocation on delete, and no
provider call inside a database transaction."""

import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.credentials.encryption import decrypt_json, encrypt_json
from apps.credentials.models import IntegrationCredential, SpentOAuth2State
from apps.credentials.services.oauth2 import OAuth2Error, credential_refresh_if_expiring
from apps.integrations import egress
from tests.fakes.oauth_provider import FakeOAuthProvider

pytestmark = pytest.mark.django_db

REDIRECT = "http://127.0.0.1:8000/oauth2/callback"


@pytest.fixture
def provider():
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
    with override_settings(NEENA_OAUTH2_CLIENTS=clients, NEENA_OAUTH2_REDIRECT_URI=REDIRECT):
        yield fake
    fake.stop()


def _authorize(api):
    response = api.get("/api/v1/integration_credentials/oauth2/authorize_url?integration_short_name=slack")
    assert response.status_code == 200, response.content
    url = urlparse(response.json()["authorize_url"])
    return url, {key: values[0] for key, values in parse_qs(url.query).items()}


def _connect(api, provider, code="code-1"):
    _, query = _authorize(api)
    provider.grant_code(code, query["code_challenge"])
    return api.post(
        "/api/v1/integration_credentials/oauth2/code",
        {"integration_short_name": "slack", "code": code, "state": query["state"]},
        format="json",
    )


def test_authorize_url_carries_client_redirect_scopes_state_and_pkce(api, provider):
    url, query = _authorize(api)

    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://slack.example/oauth/v2/authorize"
    assert query["client_id"] == "neena-client"
    assert query["redirect_uri"] == REDIRECT
    assert query["response_type"] == "code"
    assert query["scope"] == "chat:write channels:read channels:history"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43 and query["state"]


def test_code_exchange_stores_the_tokens_encrypted(api, owner, provider):
    response = _connect(api, provider)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["integration_short_name"] == "slack"
    assert body["secret_fields"] == ["access_token", "refresh_token"]
    assert "access-1" not in response.content.decode()
    credential = IntegrationCredential.objects.get()
    assert credential.owner == owner
    assert decrypt_json(credential.secret_ciphertext) == {"access_token": "access-1", "refresh_token": "refresh-1"}
    assert credential.expires_at > timezone.now() + timedelta(minutes=59)
    (token_request,) = provider.state.requests
    assert token_request["form"]["grant_type"] == "authorization_code"
    assert token_request["form"]["redirect_uri"] == REDIRECT


def test_the_state_is_single_use_and_bound_to_the_user(api, teammate_api, provider):
    _, query = _authorize(api)
    provider.grant_code("code-1", query["code_challenge"])
    body = {"integration_short_name": "slack", "code": "code-1", "state": query["state"]}

    stolen = teammate_api.post("/api/v1/integration_credentials/oauth2/code", body, format="json")
    first = api.post("/api/v1/integration_credentials/oauth2/code", body, format="json")
    replay = api.post("/api/v1/integration_credentials/oauth2/code", body, format="json")

    assert stolen.status_code == 422 and stolen.json()["detail"][0]["type"] == "state_used"
    assert first.status_code == 200
    assert replay.status_code == 422 and replay.json()["detail"][0]["loc"] == ["body", "state"]


def test_forged_or_expired_state_is_refused(api, provider):
    forged = api.post(
        "/api/v1/integration_credentials/oauth2/code",
        {"integration_short_name": "slack", "code": "x", "state": "forged"},
        format="json",
    )
    _, query = _authorize(api)
    with override_settings(NEENA_OAUTH2_STATE_TTL_SECONDS=-1):
        expired = api.post(
            "/api/v1/integration_credentials/oauth2/code",
            {"integration_short_name": "slack", "code": "x", "state": query["state"]},
            format="json",
        )

    assert forged.json()["detail"][0]["type"] == "state_invalid"
    assert expired.json()["detail"][0]["type"] == "state_expired"


def test_a_refused_code_is_422_and_stores_nothing(api, provider):
    _, query = _authorize(api)

    response = api.post(
        "/api/v1/integration_credentials/oauth2/code",
        {"integration_short_name": "slack", "code": "never-granted", "state": query["state"]},
        format="json",
    )

    assert response.status_code == 422
    assert "invalid_grant" in response.json()["detail"][0]["msg"] or "Bad code" in response.json()["detail"][0]["msg"]
    assert not IntegrationCredential.objects.exists()


def test_authorize_url_needs_an_oauth2_integration_with_a_client(api, provider):
    assert (
        api.get("/api/v1/integration_credentials/oauth2/authorize_url?integration_short_name=zendesk").json()["detail"][
            0
        ]["type"]
        == "not_oauth2"
    )
    assert (
        api.get("/api/v1/integration_credentials/oauth2/authorize_url?integration_short_name=gmail").json()["detail"][
            0
        ]["type"]
        == "no_client"
    )
    assert api.get("/api/v1/integration_credentials/oauth2/authorize_url").status_code == 422


def test_tokens_refresh_before_they_expire(api, provider):
    _connect(api, provider)
    credential = IntegrationCredential.objects.get()
    IntegrationCredential.objects.filter(id=credential.id).update(expires_at=timezone.now() + timedelta(seconds=30))
    credential.refresh_from_db()

    refreshed = credential_refresh_if_expiring(credential=credential)

    assert decrypt_json(refreshed.secret_ciphertext)["access_token"] == "access-2"
    assert refreshed.expires_at > timezone.now() + timedelta(minutes=59)
    assert provider.state.requests[-1]["form"] == {
        "grant_type": "refresh_token",
        "refresh_token": "refresh-1",
        "client_id": "neena-client",
        "client_secret": "neena-secret",
    }
    assert credential_refresh_if_expiring(credential=refreshed) == refreshed  # fresh: no second call
    assert len(provider.state.requests) == 2


def test_a_refused_refresh_marks_the_credential_broken(api, provider):
    _connect(api, provider)
    provider.state.refresh_tokens.clear()
    credential = IntegrationCredential.objects.get()
    IntegrationCredential.objects.filter(id=credential.id).update(expires_at=timezone.now())
    credential.refresh_from_db()

    with pytest.raises(OAuth2Error, match="Token has been revoked"):
        credential_refresh_if_expiring(credential=credential)

    listed = api.get("/api/v1/integration_credentials/all").json()[0]
    assert listed["status"] == "broken"
    assert "Refreshing the Slack token failed" in listed["status_reason"]


def test_deleting_revokes_the_token(api, provider):
    credential_id = _connect(api, provider).json()["id"]

    response = api.delete(f"/api/v1/integration_credentials/?id={credential_id}")

    assert response.status_code == 200
    assert provider.state.revoked == ["access-1"]
    assert not IntegrationCredential.objects.exists()


def _post_code(api, state, code="code-1", integration="slack"):
    return api.post(
        "/api/v1/integration_credentials/oauth2/code",
        {"integration_short_name": integration, "code": code, "state": state},
        format="json",
    )


def test_the_authorize_url_writes_nothing(api, provider):
    api.get("/api/v1/users/")  # the token's first use may write (last use); only the authorize call is measured
    with CaptureQueriesContext(connection) as queries:
        _authorize(api)

    writes = [query["sql"] for query in queries if not query["sql"].lstrip().upper().startswith("SELECT")]
    assert writes == []
    assert not SpentOAuth2State.objects.exists()


def test_a_failed_exchange_spends_the_state(api, provider):
    _, query = _authorize(api)

    refused = _post_code(api, query["state"], code="not-granted-yet")
    provider.grant_code("code-1", query["code_challenge"])
    retried = _post_code(api, query["state"], code="code-1")

    assert refused.status_code == 422 and refused.json()["detail"][0]["type"] == "code_refused"
    assert retried.status_code == 422 and retried.json()["detail"][0]["type"] == "state_used"
    assert not IntegrationCredential.objects.exists()
    assert len(provider.state.requests) == 1  # the retry never reached the provider


def test_a_state_is_good_only_for_its_integration_and_only_if_neena_made_it(api, provider):
    _, query = _authorize(api)
    # Neena's keys, but not a state: another ciphertext of the same keys cannot pass for one.
    other_ciphertext = encrypt_json({"api_key": "x"})

    for_github = _post_code(api, query["state"], integration="github")
    foreign = _post_code(api, other_ciphertext)

    assert for_github.status_code == 422 and for_github.json()["detail"][0]["type"] == "state_used"
    assert foreign.json()["detail"][0]["type"] == "state_invalid"
    provider.grant_code("code-1", query["code_challenge"])
    assert _post_code(api, query["state"]).status_code == 200  # neither attempt spent it


def test_spent_states_are_swept_once_long_expired(api, provider):
    old = SpentOAuth2State.objects.create(nonce="old", expires_at=timezone.now() - timedelta(days=1))
    recent = SpentOAuth2State.objects.create(nonce="recent", expires_at=timezone.now() - timedelta(minutes=1))

    assert _connect(api, provider).status_code == 200

    assert not SpentOAuth2State.objects.filter(nonce=old.nonce).exists()
    assert SpentOAuth2State.objects.filter(nonce=recent.nonce).exists()  # kept a while: hosts' clocks differ
    assert SpentOAuth2State.objects.count() == 2


def _expire(credential_id, at):
    IntegrationCredential.objects.filter(id=credential_id).update(expires_at=at)
    return IntegrationCredential.objects.select_related("integration").get(id=credential_id)


@pytest.mark.django_db(transaction=True)
def test_no_provider_call_happens_inside_a_database_transaction(api, provider, monkeypatch):
    """Exchange, refresh and revoke: each call to the provider finds no transaction open (and so no lock held)."""
    in_transaction = []
    real_request = egress.request

    def request(method, url, **kwargs):
        in_transaction.append((url.rsplit("/", 1)[-1], connection.in_atomic_block))
        return real_request(method, url, **kwargs)

    monkeypatch.setattr("apps.credentials.services.oauth2.egress.request", request)

    credential_id = _connect(api, provider).json()["id"]
    credential_refresh_if_expiring(credential=_expire(credential_id, timezone.now()))
    assert api.delete(f"/api/v1/integration_credentials/?id={credential_id}").status_code == 200

    assert in_transaction == [("token", False), ("token", False), ("revoke", False)]


@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_spend_the_refresh_token_once(api, provider):
    credential_id = _connect(api, provider).json()["id"]
    _expire(credential_id, timezone.now() - timedelta(seconds=1))  # expired: nobody can use the old token
    provider.state.token_delay_seconds = 0.5
    results, errors = [], []

    def refresh():
        try:
            credential = IntegrationCredential.objects.select_related("integration").get(id=credential_id)
            results.append(decrypt_json(credential_refresh_if_expiring(credential=credential).secret_ciphertext))
        except Exception as error:  # noqa: BLE001 (every failure is collected and asserted absent below)
            errors.append(error)
        finally:
            connection.close()

    workers = [threading.Thread(target=refresh) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)

    assert errors == []
    assert [secrets["access_token"] for secrets in results] == ["access-2"] * 3
    assert [request["form"]["grant_type"] for request in provider.state.requests].count("refresh_token") == 1
    credential = IntegrationCredential.objects.get(id=credential_id)
    assert credential.status == "active" and credential.refresh_claimed_until is None


def test_a_claimed_refresh_leaves_a_still_valid_token_in_use(api, provider):
    credential_id = _connect(api, provider).json()["id"]
    credential = _expire(credential_id, timezone.now() + timedelta(seconds=30))
    IntegrationCredential.objects.filter(id=credential_id).update(
        refresh_claimed_until=timezone.now() + timedelta(seconds=30)
    )

    used = credential_refresh_if_expiring(credential=credential)

    assert decrypt_json(used.secret_ciphertext)["access_token"] == "access-1"
    assert len(provider.state.requests) == 1  # the code exchange only: the claim's holder refreshes


def test_a_lapsed_claim_of_a_dead_worker_does_not_block_the_refresh(api, provider):
    credential_id = _connect(api, provider).json()["id"]
    credential = _expire(credential_id, timezone.now())
    IntegrationCredential.objects.filter(id=credential_id).update(
        refresh_claimed_until=timezone.now() - timedelta(seconds=1)
    )

    refreshed = credential_refresh_if_expiring(credential=credential)

    assert decrypt_json(refreshed.secret_ciphertext)["access_token"] == "access-2"
    assert refreshed.refresh_claimed_until is None
