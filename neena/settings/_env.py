"""What every settings module reads with: the repository's paths, and the environment through django-environ, where
``FOO_FILE`` may name a file holding the value of ``FOO`` (Docker and Kubernetes secrets). A ``.env`` file in the
repository root is read first, without overriding what the environment already says.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from environ.fileaware_mapping import FileAwareMapping

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"


class SecretFileMapping(FileAwareMapping):
    """``FOO_FILE`` support that drops the trailing newline secret files usually end with."""

    def __getitem__(self, key: str) -> str:
        value: str = super().__getitem__(key)
        return value.rstrip("\r\n") if self.env.get(f"{key}_FILE") else value


class SecretFileEnv(environ.Env):
    ENVIRON = SecretFileMapping()


env = SecretFileEnv()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def at_least_one(name: str, default: int) -> int:
    """An integer setting that bounds a response: zero or less would make every answer empty, so it stops start-up."""
    value = env.int(name, default=default)
    if value < 1:
        raise ImproperlyConfigured(f"{name} must be at least 1, not {value}.")
    return value
