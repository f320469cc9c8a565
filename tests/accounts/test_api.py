"""``/api/v1/users/``: the current user, token scopes, the three accepted header forms, what is refused (a token in
the query string, other schemes), 401 and 403."""

import pytest

from apps.accounts.models import User
from apps.accounts.services import api_key_create

pytestmark = pytest.mark.django_db


def test_current_user_has_the_documented_shape(api, owner, organization):
    response = api.get("/api/v1/users/")

    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in ("email", "full_name", "auth0_id", "id", "permissions")} == {
        "email": "owner@example.com",
        "full_name": "Olive Owner",
        "auth0_id": "",
        "id": str(owner.id),
        "permissions": ["read", "write", "approve"],
    }
    assert body["organizations"] == [
        {"id": str(organization.id), "name": organization.name, "role": "owner", "is_personal": True}
    ]


def test_permissions_are_the_tokens_scopes(owner, make_client):
    response = make_client(owner, scopes=("read",)).get("/api/v1/users/")

    assert response.json()["permissions"] == ["read"]


@pytest.mark.parametrize("header", ["bearer", "api_key", "bare"])
def test_every_documented_header_form_authenticates(owner, make_client, header):
    response = make_client(owner, header=header).get("/api/v1/users/")

    assert response.status_code == 200
    assert response.json()["email"] == owner.email


def test_missing_token_is_401_with_bearer_challenge(client, db):
    response = client.get("/api/v1/users/")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("authorization", ["Bearer not-a-token", "not-a-token", "Basic dXNlcjpwYXNz"])
def test_invalid_token_is_401(client, db, authorization):
    response = client.get("/api/v1/users/", HTTP_AUTHORIZATION=authorization)

    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


def test_a_token_in_the_query_string_is_refused_even_a_valid_one(owner, client):
    token = api_key_create(user=owner, scopes=["read"])

    alone = client.get(f"/api/v1/users/?access_token={token}")
    with_header = client.get(f"/api/v1/users/?access_token={token}", HTTP_AUTHORIZATION=f"Bearer {token}")

    for response in (alone, with_header):
        assert response.status_code == 401
        assert response.json()["code"] == "token_in_query"
        assert "never in the URL" in response.json()["detail"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert token not in response.content.decode()


@pytest.mark.parametrize("scheme", ["Basic", "Token", "Digest", "basic"])
def test_schemes_other_than_bearer_are_refused_as_unsupported(owner, client, scheme):
    token = api_key_create(user=owner, scopes=["read"])

    response = client.get("/api/v1/users/", HTTP_AUTHORIZATION=f"{scheme} {token}")

    assert response.status_code == 401
    assert response.json()["code"] == "unsupported_scheme"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_bearer_scheme_is_case_insensitive(owner, client):
    token = api_key_create(user=owner, scopes=["read"])

    assert client.get("/api/v1/users/", HTTP_AUTHORIZATION=f"bearer {token}").status_code == 200


def test_expired_token_is_401(owner, make_client):
    from django.utils import timezone
    from oauth2_provider.models import AccessToken

    client = make_client(owner)
    AccessToken.objects.update(expires=timezone.now())

    assert client.get("/api/v1/users/").status_code == 401


@pytest.mark.parametrize("header", ["bearer", "api_key", "bare"])
def test_a_deactivated_users_key_is_401_at_once(owner, make_client, header):
    client = make_client(owner, header=header)
    assert client.get("/api/v1/users/").status_code == 200

    User.objects.filter(pk=owner.pk).update(is_active=False)
    response = client.get("/api/v1/users/")

    assert response.status_code == 401
    assert response.json() == {"detail": "The user of this token is deactivated.", "code": "user_inactive"}
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="neena",error="invalid_token"')


def test_write_without_write_scope_is_403(owner, make_client):
    response = make_client(owner, scopes=("read",)).post(
        "/api/v1/flow_requests/", {"request_instructions": "x"}, format="json"
    )

    assert response.status_code == 403
    assert "write" in response.json()["detail"]


def test_read_without_read_scope_is_403(owner, make_client):
    response = make_client(owner, scopes=("write",)).get("/api/v1/flow_requests/all")

    assert response.status_code == 403


def test_create_if_not_exists_returns_the_caller_and_fills_blank_fields(api, owner):
    response = api.post(
        "/api/v1/users/create_if_not_exists",
        {"email": "OWNER@example.com", "full_name": "Someone Else", "auth0_id": "auth0|42"},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(owner.id)
    assert body["permissions"] is None
    owner.refresh_from_db()
    assert owner.auth0_id == "auth0|42"
    assert owner.full_name == "Olive Owner"  # an existing name is kept
    assert User.objects.count() == 1


def test_create_if_not_exists_for_another_email_is_403(api):
    response = api.post(
        "/api/v1/users/create_if_not_exists", {"email": "someone@example.com", "auth0_id": "auth0|1"}, format="json"
    )

    assert response.status_code == 403
    assert not User.objects.filter(email="someone@example.com").exists()


def test_create_if_not_exists_validates_the_body(api):
    response = api.post("/api/v1/users/create_if_not_exists", {"email": "not-an-email"}, format="json")

    assert response.status_code == 422
    locations = {tuple(item["loc"]) for item in response.json()["detail"]}
    assert locations == {("body", "email"), ("body", "auth0_id")}


def test_an_invalid_token_is_named_as_such(client, db):
    response = client.get("/api/v1/users/", HTTP_AUTHORIZATION="Bearer nope")

    assert response.json() == {"detail": "The token is invalid or has expired.", "code": "invalid_token"}


def test_the_oauth2_login_page_admits_any_user(client, db):
    response = client.get("/o/authorize/?client_id=x")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert client.get(response["Location"]).status_code == 200
