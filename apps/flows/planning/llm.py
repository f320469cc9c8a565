"""The ``llm`` planner: an OpenAI-compatible model asked for the flow as JSON against a schema.

An answer that fails validation (unknown tasks, a broken DAG, bindings that do not fit, required parameters with no
source) goes back to the model with the problems listed, at most twice. A model that cannot be reached, or that is
still wrong after the corrections, leaves the request to the rules planner (the caller's fallback).
"""

import json
from typing import Any

from apps.flows import bindings
from apps.flows.dag import validate_dag
from apps.flows.models import NAME_MAX_LENGTH
from apps.flows.planning.catalogue import Catalogue, CatalogueEntry
from apps.flows.planning.rules import PlanDraft, PlannedStep, unprovided_parameters
from apps.integrations.datatypes import coerce
from apps.integrations.llm import ModelAnswerError, ModelUnavailableError, chat_json, configured

__all__ = ["PLANNER_NAME", "ModelUnavailableError", "configured", "plan"]

PLANNER_NAME = "llm"
MAX_CORRECTIONS = 2

FLOW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "task_operations", "dependencies"],
    "properties": {
        "name": {"type": "string"},
        "task_operations": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["index", "task_name", "instruction"],
                "properties": {
                    "index": {"type": "integer", "minimum": 0},
                    "task_name": {"type": "string", "description": "Exactly one of the catalogue's task names."},
                    "instruction": {"type": "string"},
                    "parameters": {
                        "type": "object",
                        "description": "Values by parameter name: literals, or templates such as "
                        "'{{ steps.0.result.summary }}' or '{{ request.metadata.customer_email }}'.",
                    },
                },
            },
        },
        "dependencies": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["source_task_operation", "target_task_operation"],
                "properties": {
                    "source_task_operation": {"type": "integer"},
                    "target_task_operation": {"type": "integer"},
                },
            },
        },
        "notes": {"type": "array", "items": {"type": "string"}},
    },
}


def _catalogue_text(catalogue: Catalogue) -> str:
    lines = []
    for entry in catalogue.entries:
        parameters = ", ".join(f"{p['name']}: {p['data_type']}{'?' if p['optional'] else ''}" for p in entry.parameters)
        outputs = ", ".join(output["name"] for output in entry.outputs)
        lines.append(
            f"- {entry.task_name} [{entry.integration_short_name}] ({parameters}) -> ({outputs}): {entry.description}"
        )
    return "\n".join(lines)


def _messages(instructions: str, metadata_keys: set[str], catalogue: Catalogue) -> list[dict[str, str]]:
    return [
        {
            "role": "system",
            "content": "You plan automation flows. A flow is a DAG of task operations, each one task of the catalogue "
            "below; dependencies say which step runs after which (by index, 0..n-1). Bind parameters you can fill "
            "from the request; read earlier results with '{{ steps.N.result.<output> }}' and request metadata with "
            "'{{ request.metadata.<key> }}'. Put conditions you cannot express in 'notes'. Answer with one JSON "
            f"object matching this schema:\n{json.dumps(FLOW_SCHEMA)}\n\nCatalogue:\n{_catalogue_text(catalogue)}",
        },
        {
            "role": "user",
            "content": f"Request: {instructions}\nRequest metadata keys: {', '.join(sorted(metadata_keys)) or 'none'}",
        },
    ]


def _step_problems(position: int, step: dict[str, Any], entry: CatalogueEntry) -> list[str]:
    problems = []
    declared = {parameter["name"]: parameter for parameter in entry.parameters}
    for name, value in (step.get("parameters") or {}).items():
        if name not in declared:
            problems.append(f"task_operations[{position}]: '{entry.task_name}' has no parameter '{name}'.")
        elif bindings.is_template(value):
            try:
                bindings.template_references(value)
            except ValueError as error:
                problems.append(f"task_operations[{position}].parameters.{name}: {error}")
        else:
            try:
                coerce(value, declared[name]["data_type"])
            except ValueError as error:
                problems.append(f"task_operations[{position}].parameters.{name}: {error}.")
    return problems


def _output_problems(steps: list[PlannedStep]) -> list[str]:
    """Templates reading an output their step's task does not declare, which saving the flow would refuse
    (``binding.unknown_output``): said to the model, so that it can name a declared one."""
    problems = []
    for position, step in enumerate(steps):
        for name, value in step.parameters.items():
            if not bindings.is_template(value):
                continue
            for reference in bindings.template_references(value):
                if reference.step is None or reference.step >= len(steps) or not reference.result_path:
                    continue
                outputs = [output["name"] for output in steps[reference.step].entry.outputs]
                if outputs and reference.result_path[0] not in outputs:
                    problems.append(
                        f"task_operations[{position}].parameters.{name}: step {reference.step} outputs only "
                        f"{', '.join(outputs)}, not '{reference.result_path[0]}'."
                    )
    return problems


def _draft(answer: dict[str, Any], catalogue: Catalogue, metadata_keys: set[str]) -> tuple[PlanDraft | None, list[str]]:
    """The answer as a draft, or the list of problems to send back."""
    operations, dependencies = answer.get("task_operations"), answer.get("dependencies", [])
    if not isinstance(operations, list) or not operations or not isinstance(dependencies, list):
        return None, ["'task_operations' must be a non-empty array and 'dependencies' an array."]
    by_name = {entry.task_name.lower(): entry for entry in catalogue.entries}
    problems: list[str] = []
    steps: list[PlannedStep] = []
    for position, operation in enumerate(
        sorted(operations, key=lambda item: item.get("index", 0) if isinstance(item, dict) else 0)
    ):
        if not isinstance(operation, dict) or operation.get("index") != position:
            problems.append(f"task_operations[{position}] must be an object with index {position}.")
            continue
        entry = by_name.get(str(operation.get("task_name", "")).lower())
        if entry is None:
            problems.append(f"task_operations[{position}]: unknown task_name {operation.get('task_name')!r}.")
            continue
        problems += _step_problems(position, operation, entry)
        steps.append(
            PlannedStep(
                entry=entry,
                name=entry.task_name,
                instruction=str(operation.get("instruction", "")),
                parameters=dict(operation.get("parameters") or {}),
            )
        )
    edges = []
    for dependency in dependencies:
        try:
            edges.append((int(dependency["source_task_operation"]), int(dependency["target_task_operation"])))
        except (KeyError, TypeError, ValueError):
            problems.append(f"Dependency {dependency!r} needs integer source_task_operation and target_task_operation.")
    if problems:
        return None, problems
    dag_problems, _ = validate_dag(list(range(len(steps))), edges)
    problems = [f"{'.'.join(map(str, problem.where))}: {problem.message}" for problem in dag_problems]
    if not problems:
        problems = _output_problems(steps) or unprovided_parameters(steps, edges, metadata_keys)
    if problems:
        return None, problems
    notes = [str(note) for note in answer.get("notes", []) if isinstance(note, str)]
    return PlanDraft(
        str(answer.get("name") or "Generated flow")[:NAME_MAX_LENGTH], steps, edges, notes, PLANNER_NAME
    ), []


def plan(*, instructions: str, name: str, metadata_keys: set[str], catalogue: Catalogue) -> PlanDraft:
    """Asks the model, correcting it at most MAX_CORRECTIONS times; ModelUnavailableError when it cannot help."""
    messages = _messages(instructions, metadata_keys, catalogue)
    problems: list[str] = []
    for _ in range(MAX_CORRECTIONS + 1):
        try:
            answer, raw = chat_json(messages)
        except ModelAnswerError as error:
            answer, raw, problems = None, "", [str(error)]
        if answer is not None:
            draft, problems = _draft(answer, catalogue, metadata_keys)
            if draft is not None:
                if name:
                    draft.name = name
                return draft
        messages = [
            *messages,
            {"role": "assistant", "content": raw or "(not JSON)"},
            {
                "role": "user",
                "content": "That plan is invalid:\n- " + "\n- ".join(problems) + "\nAnswer again with the corrected "
                "JSON object only.",
            },
        ]
    raise ModelUnavailableError(f"the model's plan was still invalid after {MAX_CORRECTIONS} corrections: {problems}")
