"""The OAuth2 authorization server at /o/: tokens it issues work on the API with exactly their scopes."""

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlparse

import pytest
from oauth2_provider.models import AccessToken, Application, Grant, RefreshToken
from rest_framework.test import APIClient

from apps.accounts.services import api_key_create

pytestmark = pytest.mark.django_db


def _api_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_client_credentials_token_works_with_its_scopes(client, owner):
    application = Application.objects.create(
        name="Reporting",
        user=owner,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret="s3cret-s3cret",
    )

    response = client.post(
        "/o/token/",
        {
            "grant_type": "client_credentials",
            "client_id": application.client_id,
            "client_secret": "s3cret-s3cret",
            "scope": "read",
        },
    )

    assert response.status_code == 200
    token = response.json()["access_token"]
    api = _api_client(token)
    assert api.get("/api/v1/users/").json()["permissions"] == ["read"]
    assert api.post("/api/v1/flow_requests/", {"request_instructions": "x"}, format="json").status_code == 403


def test_authorization_code_with_pkce_and_refresh(client, owner):
    application = Application.objects.create(
        name="Desk app",
        user=owner,
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="http://127.0.0.1:9999/callback",
        skip_authorization=True,
    )
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    client.force_login(owner)

    authorize = client.get(
        "/o/authorize/",
        {
            "response_type": "code",
            "client_id": application.client_id,
            "redirect_uri": "http://127.0.0.1:9999/callback",
            "scope": "read write",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    code = parse_qs(urlparse(authorize["Location"]).query)["code"][0]
    token = client.post(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://127.0.0.1:9999/callback",
            "client_id": application.client_id,
            "code_verifier": verifier,
        },
    ).json()

    assert _api_client(token["access_token"]).get("/api/v1/users/").json()["permissions"] == ["read", "write"]
    refreshed = client.post(
        "/o/token/",
        {"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": application.client_id},
    ).json()
    assert _api_client(refreshed["access_token"]).get("/api/v1/users/").status_code == 200


def test_the_database_holds_no_usable_token_only_checksums(client, owner):
    application = Application.objects.create(
        name="Desk app",
        user=owner,
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="http://127.0.0.1:9999/callback",
        skip_authorization=True,
    )
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    client.force_login(owner)
    authorize = client.get(
        "/o/authorize/",
        {
            "response_type": "code",
            "client_id": application.client_id,
            "redirect_uri": "http://127.0.0.1:9999/callback",
            "scope": "read",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    code = parse_qs(urlparse(authorize["Location"]).query)["code"][0]
    issued = client.post(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://127.0.0.1:9999/callback",
            "client_id": application.client_id,
            "code_verifier": verifier,
        },
    ).json()
    api_key = api_key_create(user=owner, scopes=["read"])

    def checksum(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    assert list(AccessToken.objects.order_by("id").values_list("token", "token_checksum")) == [
        ("", checksum(issued["access_token"])),
        ("", checksum(api_key)),
    ]
    assert list(RefreshToken.objects.values_list("token", "token_checksum")) == [
        ("", checksum(issued["refresh_token"]))
    ]
    for token in (issued["access_token"], api_key):  # the checksum is what authenticates
        assert _api_client(token).get("/api/v1/users/").status_code == 200


@pytest.mark.parametrize("method", ["plain", None])
def test_pkce_plain_or_missing_method_is_refused_and_issues_no_code(client, owner, method):
    application = Application.objects.create(
        name="Desk app",
        user=owner,
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="http://127.0.0.1:9999/callback",
        skip_authorization=True,
    )
    client.force_login(owner)
    query = {
        "response_type": "code",
        "client_id": application.client_id,
        "redirect_uri": "http://127.0.0.1:9999/callback",
        "scope": "read",
        # A plain challenge is the verifier itself: anyone who sees the authorization request can redeem the code.
        "code_challenge": secrets.token_urlsafe(48),
    }
    if method:
        query["code_challenge_method"] = method

    authorize = client.get("/o/authorize/", query)

    redirect = parse_qs(urlparse(authorize["Location"]).query)
    assert redirect["error"] == ["invalid_request"]
    assert "S256" in redirect["error_description"][0]
    assert "code" not in redirect
    assert not Grant.objects.exists()
