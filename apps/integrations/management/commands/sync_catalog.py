"""``python manage.py sync_catalog``: write the connector declarations to the catalogue (also runs after migrate)."""

from typing import Any

from django.core.management.base import BaseCommand

from apps.integrations.services import catalog_sync


class Command(BaseCommand):
    help = "Write every connector's integration, task and trigger definitions to the catalogue tables."

    def handle(self, *args: Any, **options: Any) -> None:
        report = catalog_sync()
        self.stdout.write(f"Catalogue synced: {report}.")
