"""Flows as code: a flow version as a portable JSON document, and a document saved back as a flow or a new version.

A document names each step's task by its integration's ``short_name`` and the task's name, never by a row's id, so
it means the same thing in every deployment that has that catalogue, and a flow can live in git and move between
deployments. Its shape (format 1)::

    {"neena_flow": 1, "name": "...", "version": 3,
     "steps": [{"index": 0, "name": "...", "task": {"integration": "core", "task": "Format Text"},
                "instruction": "...", "x": 0.0, "y": 0.0, "parameters": {...}}],
     "dependencies": [{"source_task_operation": 0, "target_task_operation": 1, "instruction": "..."}]}

``version`` is the number the flow had where it was exported; an import reads it as information only. The export
is deterministic (keys sorted at every depth, steps by index, edges by their ends), so saving it again after nothing
changed gives the same bytes and a diff in git shows only what changed.

An import resolves every task among the live task definitions of live integrations (the catalogue is shared by all
organizations), reports every one it cannot find in one 422, then saves through ``flow_create`` or ``flow_update``:
the same validation, and an import that changes nothing makes no version.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.db import transaction

from apps.accounts.models import User
from apps.core.exceptions import ErrorItem, InputValidationError, Location
from apps.flows.models import Flow, FlowVersion
from apps.flows.services import DependencyDraft, TaskOperationDraft, flow_create, flow_update
from apps.integrations.selectors import task_definition_list

FORMAT_MARKER = "neena_flow"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class StepDocument:
    """One step of a document: a task operation whose task is named (integration short_name, task name)."""

    index: int
    name: str
    integration: str
    task: str
    instruction: str = ""
    x: float | None = None
    y: float | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FlowDocument:
    """A parsed document (``FlowImportInputSerializer`` makes one); ``version`` is the source's number, unused."""

    name: str
    steps: Sequence[StepDocument]
    dependencies: Sequence[DependencyDraft] = ()
    version: int | None = None


def _sorted(value: Any) -> Any:
    """The JSON value with every object's keys in order, at every depth."""
    if isinstance(value, Mapping):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def flow_export(*, version: FlowVersion) -> dict[str, Any]:
    """The document of one version of a flow (its steps with their task definitions and integrations fetched).

    A step whose task definition was removed from the catalogue since is exported under its name all the same: the
    document says what the version holds, and importing it where the task is gone is the 422 naming it.
    """
    steps = [
        {
            "index": operation.index,
            "name": operation.name,
            "task": {
                "integration": operation.task_definition.integration.short_name,
                "task": operation.task_definition.task_name,
            },
            "instruction": operation.instruction,
            "x": operation.x,
            "y": operation.y,
            "parameters": operation.parameters or {},
        }
        for operation in sorted(version.task_operations.all(), key=lambda operation: operation.index)
    ]
    dependencies = [
        {
            "source_task_operation": dependency.source_task_operation,
            "target_task_operation": dependency.target_task_operation,
            "instruction": dependency.instruction,
        }
        for dependency in sorted(
            version.dependencies.all(),
            key=lambda dependency: (dependency.source_task_operation, dependency.target_task_operation),
        )
    ]
    return _sorted(
        {
            FORMAT_MARKER: FORMAT_VERSION,
            "name": version.flow.name,
            "version": version.number,
            "steps": steps,
            "dependencies": dependencies,
        }
    )


def flow_document_text(document: Mapping[str, Any]) -> str:
    """The document as a file holds it: indented, keys sorted, non-ASCII text as is, one newline at the end."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _task_definitions_resolve(steps: Sequence[StepDocument]) -> dict[tuple[str, str], UUID]:
    """The live task definition of each (integration, task) the steps name; a 422 listing every step whose task is
    not in the catalogue (or, which the catalogue's sync never writes, is there twice), at ``steps.N.task``."""
    wanted = {(step.integration, step.task) for step in steps}
    found: dict[tuple[str, str], list[UUID]] = {}
    candidates = task_definition_list().filter(
        integration__deleted_at__isnull=True,
        integration__short_name__in={integration for integration, _ in wanted},
        task_name__in={task for _, task in wanted},
    )
    for definition_id, short_name, task_name in candidates.values_list("id", "integration__short_name", "task_name"):
        found.setdefault((short_name, task_name), []).append(definition_id)
    problems = []
    for position, step in enumerate(steps):
        matches = found.get((step.integration, step.task), [])
        if len(matches) == 1:
            continue
        loc: list[str | int] = ["body", "steps", position, "task"]
        if matches:
            message = f"Task '{step.task}' of integration '{step.integration}' is in the catalogue twice."
            problems.append(ErrorItem(loc, message, "task_definition.ambiguous"))
        else:
            message = f"Unknown task '{step.task}' of integration '{step.integration}': the catalogue has no such task."
            problems.append(ErrorItem(loc, message, "task_definition.not_found"))
    if problems:
        raise InputValidationError(problems)
    return {key: matches[0] for key, matches in found.items() if len(matches) == 1}


def _document_location(loc: Location) -> list[str | int]:
    """Where a problem ``flow_validate`` found in the drafts is in the document: its steps are ``steps`` and a
    step's task is ``task``."""
    located = list(loc)
    if located[:2] == ["body", "task_operations"]:
        located[1] = "steps"
        if len(located) == 4 and located[3] == "task_definition":
            located[3] = "task"
    return located


@transaction.atomic
def flow_import(
    *, user: User, document: FlowDocument, organization: UUID | None = None, flow: Flow | None = None
) -> Flow:
    """Saves a document as a new flow in ``organization`` (as ``flow_create`` chooses it), or, given ``flow``, as
    its next version (``flow_update``: the organization cannot change, and a document equal to the latest version
    makes none; the flow takes the document's name).

    Steps: resolve every step's task (one 422 for all the unknown ones), turn the steps into drafts, save; a problem
    the flow's validation finds is reported at its place in the document.
    """
    definitions = _task_definitions_resolve(document.steps)
    task_operations = [
        TaskOperationDraft(
            index=step.index,
            name=step.name,
            task_definition=definitions[(step.integration, step.task)],
            instruction=step.instruction,
            x=step.x,
            y=step.y,
            parameters=step.parameters,
        )
        for step in document.steps
    ]
    try:
        if flow is None:
            return flow_create(
                user=user,
                name=document.name,
                task_operations=task_operations,
                dependencies=document.dependencies,
                organization=organization,
            )
        return flow_update(
            user=user,
            flow=flow,
            name=document.name,
            task_operations=task_operations,
            dependencies=document.dependencies,
            organization=organization,
        )
    except InputValidationError as error:
        raise InputValidationError(
            [ErrorItem(_document_location(item.loc), item.msg, item.type) for item in error.items]
        ) from None
