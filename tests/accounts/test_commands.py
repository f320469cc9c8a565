"""``manage.py create_api_key``: prints only the token, which then works with exactly the scopes asked for."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from apps.accounts.models import Membership, User

pytestmark = pytest.mark.django_db


def _create_api_key(*args: str) -> str:
    out = StringIO()
    call_command("create_api_key", *args, stdout=out)
    return out.getvalue()


def test_prints_only_a_working_token_and_creates_user_with_personal_organization():
    output = _create_api_key("--email", "new@example.com")

    token = output.strip()
    assert output == token + "\n" and " " not in token
    user = User.objects.get(email="new@example.com")
    assert Membership.objects.get(user=user).role == Membership.Role.OWNER
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/v1/users/").json()["permissions"] == ["read", "write", "approve"]


def test_reuses_an_existing_user_and_honours_scopes(owner):
    token = _create_api_key("--email", owner.email, "--scopes", "read").strip()

    assert User.objects.count() == 1
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/v1/users/").json()["permissions"] == ["read"]


def test_unknown_scope_is_an_error():
    with pytest.raises(CommandError, match="Scopes must be"):
        _create_api_key("--email", "x@example.com", "--scopes", "read admin")


def test_invalid_email_is_an_error():
    with pytest.raises(CommandError, match="Not an email address"):
        _create_api_key("--email", "not-an-email")
