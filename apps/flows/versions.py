"""What a flow version holds, compared: whether a change makes a new version, the diff of two versions, and the
one-line summary each version keeps of what changed.

A version's content is its steps by index (task definition, name, instruction, canvas position, parameter bindings)
and its edges by (source, target) with their instructions. Two contents are equal exactly when nothing a run could
execute or a person could see on the canvas differs; ``sorted_index`` is derived from the edges, so it is not part
of it.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

OPERATION_FIELDS = ("task_definition", "name", "instruction", "x", "y")
Edge = tuple[int, int]


@dataclass(frozen=True)
class VersionContent:
    """A version's steps (index -> fields, ``task_definition`` as text, ``parameters`` a dict) and edges."""

    operations: dict[int, dict[str, Any]]
    edges: dict[Edge, str]


def operation_content(
    *, task_definition: UUID | str, name: str, instruction: str, x: float | None, y: float | None, parameters: Any
) -> dict[str, Any]:
    """One step's content, in the form versions are compared and diffs are shown."""
    return {
        "task_definition": str(task_definition),
        "name": name,
        "instruction": instruction,
        "x": x,
        "y": y,
        "parameters": dict(parameters or {}),
    }


def content_of(operations: Iterable[Any], dependencies: Iterable[Any]) -> VersionContent:
    """The content of saved rows or of drafts (anything with the fields of a task operation and a dependency)."""
    return VersionContent(
        operations={
            operation.index: operation_content(
                task_definition=getattr(operation, "task_definition_id", None) or operation.task_definition,
                name=operation.name,
                instruction=operation.instruction,
                x=operation.x,
                y=operation.y,
                parameters=operation.parameters,
            )
            for operation in operations
        },
        edges={
            (dependency.source_task_operation, dependency.target_task_operation): dependency.instruction
            for dependency in dependencies
        },
    )


def _change(before: Any, after: Any) -> dict[str, Any]:
    return {"before": before, "after": after}


def _same_json(before: Any, after: Any) -> bool:
    """Whether two bindings are the same JSON: Python finds ``1 == True == 1.0``, but they are different values to
    store and to run with, so an edit from one to another is a change."""
    return json.dumps(before, sort_keys=True) == json.dumps(after, sort_keys=True)


def _parameter_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "added": {name: after[name] for name in sorted(after.keys() - before.keys())},
        "removed": {name: before[name] for name in sorted(before.keys() - after.keys())},
        "changed": {
            name: _change(before[name], after[name])
            for name in sorted(before.keys() & after.keys())
            if not _same_json(before[name], after[name])
        },
    }


def _edge(edge: Edge, instruction: str) -> dict[str, Any]:
    return {"source_task_operation": edge[0], "target_task_operation": edge[1], "instruction": instruction}


def version_diff(before: VersionContent, after: VersionContent) -> dict[str, Any]:
    """What changed from ``before`` to ``after``, as JSON.

    Steps are matched by index: ``task_operations`` lists those ``added`` and ``removed`` (with their content) and
    those ``changed`` (each with the fields that differ, as before/after, and its parameters added, removed and
    changed); ``dependencies`` the edges added, removed, and those whose instruction changed.
    """
    changed_operations = []
    for index in sorted(before.operations.keys() & after.operations.keys()):
        old, new = before.operations[index], after.operations[index]
        fields = {name: _change(old[name], new[name]) for name in OPERATION_FIELDS if old[name] != new[name]}
        parameters = _parameter_diff(old["parameters"], new["parameters"])
        if fields or any(parameters.values()):
            changed_operations.append({"index": index, "fields": fields, "parameters": parameters})
    return {
        "task_operations": {
            "added": [
                {"index": index, **after.operations[index]}
                for index in sorted(after.operations.keys() - before.operations.keys())
            ],
            "removed": [
                {"index": index, **before.operations[index]}
                for index in sorted(before.operations.keys() - after.operations.keys())
            ],
            "changed": changed_operations,
        },
        "dependencies": {
            "added": [_edge(edge, after.edges[edge]) for edge in sorted(after.edges.keys() - before.edges.keys())],
            "removed": [_edge(edge, before.edges[edge]) for edge in sorted(before.edges.keys() - after.edges.keys())],
            "changed": [
                {
                    "source_task_operation": edge[0],
                    "target_task_operation": edge[1],
                    "instruction": _change(before.edges[edge], after.edges[edge]),
                }
                for edge in sorted(before.edges.keys() & after.edges.keys())
                if before.edges[edge] != after.edges[edge]
            ],
        },
    }


def diff_is_empty(diff: dict[str, Any]) -> bool:
    return not any(entries for part in diff.values() for entries in part.values())


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def first_version_summary(content: VersionContent) -> str:
    return f"Created with {_plural(len(content.operations), 'step')} and {_plural(len(content.edges), 'edge')}."


def diff_summary(diff: dict[str, Any], task_names: Mapping[str, str]) -> str:
    """One line saying what a diff changed, naming tasks by their names (``task_names``: definition id -> name).

    For example: "step 0: task Add Zendesk Internal Note -> Add Zendesk Public Reply; step 2 added (Format Text);
    edge 1 -> 2 removed".
    """

    def task(definition_id: str) -> str:
        return task_names.get(definition_id, definition_id)

    parts = []
    operations, edges = diff["task_operations"], diff["dependencies"]
    for changed in operations["changed"]:
        what = []
        fields = changed["fields"]
        if "task_definition" in fields:
            definition = fields["task_definition"]
            what.append(f"task {task(definition['before'])} -> {task(definition['after'])}")
        what.extend(name for name in ("name", "instruction") if name in fields)
        if "x" in fields or "y" in fields:
            what.append("position")
        parameters = sorted(name for entries in changed["parameters"].values() for name in entries)
        if parameters:
            what.append(f"parameters {', '.join(parameters)}")
        parts.append(f"step {changed['index']}: {', '.join(what)}")
    parts.extend(f"step {added['index']} added ({task(added['task_definition'])})" for added in operations["added"])
    parts.extend(f"step {removed['index']} removed" for removed in operations["removed"])
    for kind in ("added", "removed"):
        parts.extend(
            f"edge {edge['source_task_operation']} -> {edge['target_task_operation']} {kind}" for edge in edges[kind]
        )
    parts.extend(
        f"edge {edge['source_task_operation']} -> {edge['target_task_operation']}: instruction"
        for edge in edges["changed"]
    )
    if not parts:
        return "No change."
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."
