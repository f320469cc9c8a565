"""Encryption at rest for credential secrets: MultiFernet over NEENA_ENCRYPTION_KEYS.

The first key encrypts; every key decrypts, so a new key is put first and old ciphertexts stay readable until
re-encrypted. Secrets are JSON objects, stored as one Fernet token.
"""

import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class DecryptionError(Exception):
    """No configured key opens the ciphertext (the key that wrote it was removed)."""


@lru_cache(maxsize=4)
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def _cipher() -> MultiFernet:
    return _multi_fernet(tuple(settings.NEENA_ENCRYPTION_KEYS))


def encrypt_json(data: dict[str, Any]) -> str:
    return _cipher().encrypt(json.dumps(data, sort_keys=True).encode()).decode()


def decrypt_json(ciphertext: str) -> dict[str, Any]:
    try:
        return dict(json.loads(_cipher().decrypt(ciphertext.encode())))
    except InvalidToken as error:
        raise DecryptionError("No configured encryption key can decrypt this secret.") from error


def reencrypt(ciphertext: str) -> str:
    """The same secret encrypted with the newest key (for key rotation)."""
    try:
        return _cipher().rotate(ciphertext.encode()).decode()
    except InvalidToken as error:
        raise DecryptionError("No configured encryption key can decrypt this secret.") from error
