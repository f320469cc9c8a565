"""``manage.py rotate_credentials``: every secret re-encrypted with the newest key; old keys can then go."""

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.test import override_settings

from apps.credentials.encryption import decrypt_json
from apps.credentials.models import IntegrationCredential
from apps.credentials.services.credentials import credential_upsert

pytestmark = pytest.mark.django_db

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def test_rotation_re_encrypts_with_the_newest_key(owner):
    with override_settings(NEENA_ENCRYPTION_KEYS=[OLD]):
        credential_upsert(user=owner, integration_short_name="trello", api_key="k1", credentials={"token": "t1"})

    with override_settings(NEENA_ENCRYPTION_KEYS=[NEW, OLD]):
        out = StringIO()
        call_command("rotate_credentials", stdout=out)

    assert "Re-encrypted 1 secrets" in out.getvalue()
    with override_settings(NEENA_ENCRYPTION_KEYS=[NEW]):
        assert decrypt_json(IntegrationCredential.objects.get().secret_ciphertext) == {"api_key": "k1", "token": "t1"}


def test_rotation_without_the_old_key_is_a_clear_error(owner):
    with override_settings(NEENA_ENCRYPTION_KEYS=[OLD]):
        credential_upsert(user=owner, integration_short_name="trello", api_key="k1")

    with override_settings(NEENA_ENCRYPTION_KEYS=[NEW]), pytest.raises(CommandError, match="Keep the old key"):
        call_command("rotate_credentials", stdout=StringIO())
