"""The connector registry: every module in this package (but ``base``) declares one integration.

Adding an integration is adding a module here with its ``CONNECTOR = ConnectorSpec(...)`` and its task functions;
``sync_catalog`` (also run after migrate) writes it to the catalogue. ``core`` comes first, the rest by name.
"""

import pkgutil
from importlib import import_module

from apps.integrations.connectors.base import ConnectorSpec

NOT_CONNECTORS = {"base"}


def connector_module_names() -> list[str]:
    names = sorted(module.name for module in pkgutil.iter_modules(__path__) if module.name not in NOT_CONNECTORS)
    return sorted(names, key=lambda name: name != "core")


def connector_spec(short_name: str) -> ConnectorSpec | None:
    """The declaration of one connector by its short name, or None when there is no such module."""
    if short_name not in connector_module_names():
        return None
    return import_module(f"{__name__}.{short_name}").CONNECTOR


def connector_specs() -> list[ConnectorSpec]:
    """Every declared connector: ``core`` first, then by module name."""
    return [import_module(f"{__name__}.{name}").CONNECTOR for name in connector_module_names()]
