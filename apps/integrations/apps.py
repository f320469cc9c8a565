from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_catalog_after_migrate(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    from apps.integrations.services import catalog_sync

    catalog_sync(using=using)


class IntegrationsConfig(AppConfig):
    name = "apps.integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        # The catalogue is code (connector modules), so the tables follow it after every migrate and every test
        # database flush, exactly like Django's own content types and permissions do. A framework hook, not
        # business logic: the sync itself is the ``catalog_sync`` service, also run by ``manage.py sync_catalog``.
        post_migrate.connect(_sync_catalog_after_migrate, sender=self, dispatch_uid="neena.catalog_sync")
