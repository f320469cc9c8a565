"""Calling a task definition's implementation: the contract between the run engine and the connector modules.

A connector implements a task as a function named after the definition's ``python_method_name``, taking a
``TaskContext`` and the prepared parameters as keyword arguments, and returning a dict of outputs. It raises
``TransientTaskError`` for failures worth retrying (network, 5xx, 429) and ``TaskError`` for the rest.
"""

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any
from uuid import UUID

from apps.integrations.models import TaskDefinition


class TaskError(Exception):
    """The task cannot succeed as asked (bad input, refused by the service): the step fails with this message."""


class TransientTaskError(TaskError):
    """A failure that may pass (network, 5xx, 429): the step is retried with backoff, at most the definition's limit.

    ``retry_after`` (seconds) is the service's own hint, e.g. from a Retry-After header.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class CredentialAccess:
    """The decrypted secrets (API key, tokens) and settings (subdomain, account email) a connector calls with."""

    credential_id: UUID
    secrets: dict[str, Any]
    config: dict[str, Any]


@dataclass(frozen=True)
class TaskContext:
    """What an implementation may know about the step it runs.

    ``idempotency_key`` is stable across re-deliveries of the same attempt (a transient retry or a run retry gets a
    new one): a side-effecting call passes it where the service accepts one, and the core tasks use it to record each
    side effect at most once.
    """

    organization_id: UUID
    flow_run_id: UUID
    flow_request_id: UUID
    task_run_id: UUID
    idempotency_key: str
    integration_entity: tuple[str, str] | None
    credential: CredentialAccess | None = None
    time_limit_seconds: float = 60.0

    def require_credential(self) -> CredentialAccess:
        """The credential, for connectors whose service needs one (the engine resolves it before the call)."""
        if self.credential is None:
            raise TaskError("This task needs a credential and none was given.")
        return self.credential


TaskImplementation = Callable[..., dict[str, Any]]

# Implementations that are not connector modules: an integration's ``class_name`` -> a function giving the
# implementation of one of its definitions. Apps above this one (MCP servers) register theirs when Django starts,
# so the engine can call them without this module importing them.
_implementation_sources: dict[str, Callable[[TaskDefinition], TaskImplementation]] = {}


def implementation_source_register(class_name: str, source: Callable[[TaskDefinition], TaskImplementation]) -> None:
    _implementation_sources[class_name] = source


def task_implementation(definition: TaskDefinition) -> TaskImplementation:
    """The function implementing a task definition; TaskError when its connector has none."""
    source = _implementation_sources.get(definition.integration.class_name)
    if source is not None:
        return source(definition)
    short_name = definition.integration.short_name
    try:
        module = import_module(f"apps.integrations.connectors.{short_name}")
    except ImportError as error:
        raise TaskError(f"No connector module for the '{short_name}' integration.") from error
    implementation = getattr(module, definition.python_method_name, None)
    if not callable(implementation):
        raise TaskError(f"The {definition.integration.name} connector cannot run '{definition.task_name}' yet.")
    return implementation


def task_call(definition: TaskDefinition, context: TaskContext, parameters: dict[str, Any]) -> dict[str, Any]:
    """Runs the task with its prepared parameters and returns its outputs."""
    outputs = task_implementation(definition)(context, **parameters)
    if not isinstance(outputs, dict):
        raise TaskError(f"'{definition.task_name}' returned {type(outputs).__name__}, not an object of outputs.")
    return outputs
