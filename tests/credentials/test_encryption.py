"""Encryption at rest: MultiFernet with rotation, and the start-up check of the configured keys."""

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings

from apps.credentials.checks import encryption_keys_check
from apps.credentials.encryption import DecryptionError, decrypt_json, encrypt_json, reencrypt

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def test_round_trip():
    with override_settings(NEENA_ENCRYPTION_KEYS=[NEW]):
        assert decrypt_json(encrypt_json({"api_key": "s3cret"})) == {"api_key": "s3cret"}


def test_old_keys_still_decrypt_and_reencrypt_uses_the_newest():
    with override_settings(NEENA_ENCRYPTION_KEYS=[OLD]):
        ciphertext = encrypt_json({"api_key": "s3cret"})
    with override_settings(NEENA_ENCRYPTION_KEYS=[NEW, OLD]):
        assert decrypt_json(ciphertext) == {"api_key": "s3cret"}
        rotated = reencrypt(ciphertext)
    with override_settings(NEENA_ENCRYPTION_KEYS=[NEW]):
        assert decrypt_json(rotated) == {"api_key": "s3cret"}
        with pytest.raises(DecryptionError):
            decrypt_json(ciphertext)


def test_startup_check_reports_bad_and_missing_keys():
    with override_settings(NEENA_ENCRYPTION_KEYS=[NEW, "not-a-key"]):
        assert [error.id for error in encryption_keys_check(None)] == ["neena.E002"]
    with override_settings(NEENA_ENCRYPTION_KEYS=[]):
        assert [error.id for error in encryption_keys_check(None)] == ["neena.E001"]
    with override_settings(NEENA_ENCRYPTION_KEYS=[NEW]):
        assert encryption_keys_check(None) == []
