"""The connector registry: every integration Neena knows, one module each.

Adding an integration is adding a module here and naming it in ``CONNECTOR_MODULES``; ``sync_catalog`` does the rest.
"""

from importlib import import_module

from apps.integrations.connectors.base import ConnectorSpec

CONNECTOR_MODULES = ("core", "slack", "trello", "zendesk", "gmail", "github", "webhook")


def connector_specs() -> list[ConnectorSpec]:
    """Every declared connector, in registry order."""
    return [import_module(f"{__name__}.{module}").CONNECTOR for module in CONNECTOR_MODULES]
