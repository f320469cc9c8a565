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


def connector_specs() -> list[ConnectorSpec]:
    """Every declared connector: ``core`` first, then by module name."""
    return [import_module(f"{__name__}.{name}").CONNECTOR for name in connector_module_names()]
