"""``python manage.py rotate_credentials``: re-encrypt every stored secret with the newest encryption key."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.credentials.encryption import DecryptionError
from apps.credentials.services.credentials import credentials_reencrypt
from apps.mcp_servers.services import mcp_server_secrets_reencrypt
from apps.webhooks.services.operations import trigger_operation_secrets_reencrypt


class Command(BaseCommand):
    help = (
        "Re-encrypt all credential secrets, webhook signing secrets and MCP servers' env and headers with "
        " the first key of NEENA_ENCRYPTION_KEYS. "
        "Rotate by putting a new key first, running this, then removing the old keys."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            count = credentials_reencrypt() + trigger_operation_secrets_reencrypt() + mcp_server_secrets_reencrypt()
        except DecryptionError as error:
            raise CommandError(f"{error} Keep the old key in NEENA_ENCRYPTION_KEYS until this has run.") from error
        self.stdout.write(f"Re-encrypted {count} secrets with the newest key.")
