"""A start-up check: every NEENA_ENCRYPTION_KEYS entry must be a valid Fernet key."""

from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import CheckMessage, Error, register


@register()
def encryption_keys_check(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    keys = settings.NEENA_ENCRYPTION_KEYS
    if not keys:
        return [Error("NEENA_ENCRYPTION_KEYS is empty.", hint="Set it to one or more Fernet keys.", id="neena.E001")]
    errors: list[CheckMessage] = []
    for position, key in enumerate(keys):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            errors.append(
                Error(
                    f"NEENA_ENCRYPTION_KEYS entry {position + 1} is not a valid Fernet key.",
                    hint='Make one with: python -c "from cryptography.fernet import Fernet; '
                    'print(Fernet.generate_key().decode())"',
                    id="neena.E002",
                )
            )
    return errors
