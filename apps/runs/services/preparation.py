"""Preparing a step's input parameters (the ``rules`` preparer): where each value comes from, checked and coerced.

For every parameter of the task definition, in this order of precedence:

0. a value set by a rerun from this step (``POST /flow_runs/rerun_from``, already of the parameter's type);
1. an explicit binding on the task operation: a literal, or a template over ``steps.N.result`` / ``request.*``;
2. the request metadata, by the parameter's name;
3. an upstream step's result, by the parameter's name (direct predecessors first, then the nearest step before);
4. a value found in the instruction text of the step (then of the request): an email, a URL, a quoted text, a
   #channel, an owner/repo, a number next to the parameter's name, a list of quoted items;
5. for prose (``text``) parameters, the main output of the direct predecessor (a summary becomes a message);
6. the parameter's default.

Each value is coerced to the parameter's data_type. A required parameter with no value fails the step, naming it,
before the integration is called. The answer records each value with its explanation and source.
"""

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from apps.flows import bindings
from apps.flows.models import FlowRequest, TaskOperation
from apps.integrations.connectors.base import DataType
from apps.integrations.datatypes import coerce, coerce_exact
from apps.integrations.llm import ModelAnswerError, ModelUnavailableError, chat_json
from apps.integrations.llm import configured as llm_configured
from apps.integrations.models import TaskDefinition

PREPARER_NAME = "rules"
# The source of a value a rerun from the step set: it comes before every other, the model's included.
RERUN_OVERRIDE = "rerun override"
TEXT_TYPES = {DataType.STRING, DataType.TEXT}

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
URL = re.compile(r"https?://[^\s\"'<>)]+")
QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”|'([^']{2,})'")
CHANNEL = re.compile(r"(?<![\w&])#([a-z0-9][a-z0-9_-]*)", re.IGNORECASE)
REPOSITORY = re.compile(r"\b([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)\b")
NUMBER = r"(-?\d+(?:\.\d+)?)"


class PreparationError(Exception):
    """A parameter got no usable value; the step fails with this message and the integration is not called."""

    def __init__(self, message: str, preparation: "Preparation") -> None:
        super().__init__(message)
        self.preparation = preparation


@dataclass
class PreparedParameter:
    name: str
    value: Any
    explanation: str
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "explanation": self.explanation, "source": self.source}


@dataclass
class Preparation:
    """The messages describing the step (``task_prep_prompt``) and the prepared parameters (``task_prep_answer``)."""

    prompt: dict[str, Any]
    parameters: list[PreparedParameter] = field(default_factory=list)
    preparer_note: str = PREPARER_NAME

    @property
    def answer(self) -> dict[str, Any]:
        return {"parameters": [parameter.as_dict() for parameter in self.parameters], "preparer": self.preparer_note}

    @property
    def values(self) -> dict[str, Any]:
        return {parameter.name: parameter.value for parameter in self.parameters}


@dataclass(frozen=True)
class StepInputs:
    """What a step can draw on: its operation and definition, the request, and completed upstream results; and the
    values a rerun from this step set (``overrides``, already of their parameters' types), which come first."""

    operation: TaskOperation
    definition: TaskDefinition
    flow_request: FlowRequest
    upstream_results: dict[int, Any]
    direct_predecessors: list[int]
    nearest_first: list[int]
    overrides: dict[str, Any] = field(default_factory=dict)


class _MissingReferenceError(Exception):
    pass


def _lookup(value: Any, path: list[str]) -> Any:
    for part in path:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise _MissingReferenceError(part)
    return value


def _resolve_reference(text: str, inputs: StepInputs, metadata: dict[str, Any]) -> Any:
    parts = text.split(".")
    if parts[0] == "steps":
        index = int(parts[1])
        if index not in inputs.upstream_results:
            raise _MissingReferenceError(f"steps.{index}")
        return _lookup(inputs.upstream_results[index], parts[3:])
    if parts[1] == "instructions":
        return inputs.flow_request.request_instructions
    return _lookup(metadata, parts[2:])


def _resolve_template(template: str, inputs: StepInputs, metadata: dict[str, Any]) -> Any:
    """A template that is exactly one reference keeps the value's type; otherwise references are inserted as text."""
    whole = bindings.TEMPLATE_PART.fullmatch(template.strip())
    if whole:
        return _resolve_reference(whole.group(1), inputs, metadata)

    def insert(match: re.Match[str]) -> str:
        value = _resolve_reference(match.group(1), inputs, metadata)
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    return bindings.TEMPLATE_PART.sub(insert, template)


def _name_words(name: str) -> list[str]:
    return [word for word in name.lower().split("_") if word not in {"max", "min", "number", "of", "id", "num"}]


def _from_text(text: str, name: str, data_type: str) -> Any:
    """A value for the parameter found in free text, or None."""
    lowered = name.lower()
    if data_type == DataType.EMAIL or "email" in lowered or lowered in {"recipient", "to"}:
        match = EMAIL.search(text)
        if match:
            return match.group(0)
    if data_type == DataType.URL or lowered.endswith("url"):
        match = URL.search(text)
        return match.group(0).rstrip(".,;") if match else None
    if data_type in (DataType.INT, DataType.FLOAT):
        for word in _name_words(name):
            match = re.search(rf"{NUMBER}\s+{re.escape(word)}", text, re.IGNORECASE) or re.search(
                rf"\b{re.escape(word)}\w*\s*(?:#|number|no\.?|:|=)?\s*{NUMBER}", text, re.IGNORECASE
            )
            if match:
                return match.group(1)
        return None
    if "channel" in lowered:
        match = CHANNEL.search(text)
        return f"#{match.group(1)}" if match else None
    if lowered in {"repo", "repository"}:
        match = REPOSITORY.search(URL.sub("", text))
        return match.group(1) if match else None
    quoted = [next(group for group in match.groups() if group) for match in QUOTED.finditer(text)]
    if data_type == DataType.LIST and quoted:
        return quoted
    if data_type in TEXT_TYPES and quoted:
        return quoted[0]
    return None


def _describe(inputs: StepInputs) -> dict[str, Any]:
    """The messages that describe the step: what an LLM preparer is asked, and what the rules preparer works from."""
    definition, operation = inputs.definition, inputs.operation
    parameters = "\n".join(
        f"- {parameter['name']} ({parameter['data_type']}{', optional' if parameter['optional'] else ''}): "
        f"{parameter['doc_string']}"
        for parameter in definition.parameters
    )
    upstream = "\n".join(
        f"- step {index}: {json.dumps(inputs.upstream_results[index], ensure_ascii=False)[:2000]}"
        for index in sorted(inputs.upstream_results)
    )
    return {
        "messages": [
            {
                "role": "system",
                "content": "Prepare the input parameters of one step of an automation flow. Use explicit bindings "
                "first, then the request metadata, the results of earlier steps, the instructions, and defaults. "
                "Answer with each parameter's value, an explanation and its source.",
            },
            {
                "role": "user",
                "content": f"Task: {definition.task_name}: {definition.description}\n"
                f"Parameters:\n{parameters}\n"
                f"Step {operation.index} ({operation.name}) instruction: {operation.instruction}\n"
                f"Explicit bindings: {json.dumps(operation.parameters, ensure_ascii=False)}\n"
                f"Request: {inputs.flow_request.request_instructions}\n"
                f"Request metadata: {json.dumps(inputs.flow_request.request_metadata, ensure_ascii=False)}\n"
                f"Results of earlier steps:\n{upstream or '- none'}",
            },
        ]
    }


def _primary_output(result: Any) -> tuple[str, Any] | None:
    if isinstance(result, dict) and result:
        name, value = next(iter(result.items()))
        return (name, value) if isinstance(value, str) else None
    return None


def _find(parameter: dict[str, Any], inputs: StepInputs, metadata: dict[str, Any]) -> PreparedParameter | None:
    """The first source, in the module's order of precedence, that has a value for the parameter."""
    name, data_type = parameter["name"], parameter["data_type"]
    if name in inputs.overrides:
        return PreparedParameter(name, inputs.overrides[name], "Set for this rerun.", RERUN_OVERRIDE)
    if name in inputs.operation.parameters:
        binding = inputs.operation.parameters[name]
        if bindings.is_template(binding):
            try:
                value = _resolve_template(binding, inputs, metadata)
            except _MissingReferenceError as missing:
                raise PreparationError(
                    f"The binding {binding!r} of '{name}' found nothing at '{missing}'.", Preparation(prompt={})
                ) from None
            return PreparedParameter(name, value, f"From the binding {binding}.", "binding")
        return PreparedParameter(name, binding, "Bound explicitly in the flow.", "binding")
    if name in metadata:
        return PreparedParameter(name, metadata[name], f"The request metadata's '{name}'.", "request metadata")
    for index in [*inputs.direct_predecessors, *inputs.nearest_first]:
        result = inputs.upstream_results.get(index)
        if isinstance(result, dict) and name in result:
            return PreparedParameter(name, result[name], f"Output '{name}' of step {index}.", f"step {index}'s result")
    for text, where in ((inputs.operation.instruction, "step"), (inputs.flow_request.request_instructions, "request")):
        found = _from_text(text or "", name, data_type)
        if found is not None:
            return PreparedParameter(name, found, f"Found in the {where}'s instruction text.", "instruction text")
    if data_type == DataType.TEXT:
        for index in inputs.direct_predecessors:
            primary = _primary_output(inputs.upstream_results.get(index))
            if primary:
                return PreparedParameter(
                    name, primary[1], f"The main output '{primary[0]}' of step {index}.", f"step {index}'s result"
                )
    if parameter.get("default") is not None:
        return PreparedParameter(name, parameter["default"], "The parameter's default.", "default")
    return None


def step_prepare(inputs: StepInputs) -> Preparation:
    """Prepares every parameter of the step; raises PreparationError naming the first one that cannot be had (its
    ``preparation`` still holds every parameter that could)."""
    preparation = Preparation(prompt=_describe(inputs))
    metadata = inputs.flow_request.merged_metadata()
    problems = []
    for parameter in sorted(inputs.definition.parameters, key=lambda parameter: parameter["position"]):
        name = parameter["name"]
        try:
            found = _find(parameter, inputs, metadata)
        except PreparationError as error:
            problems.append(str(error))
            continue
        if found is None:
            if not parameter["optional"]:
                problems.append(
                    f"No value for the required parameter '{name}' of '{inputs.definition.task_name}': no binding, "
                    "request metadata, earlier result or instruction provides it."
                )
            continue
        try:
            found.value = coerce(found.value, parameter["data_type"])
        except ValueError as error:
            problems.append(f"Parameter '{name}' of '{inputs.definition.task_name}': {error} (from {found.source}).")
            continue
        preparation.parameters.append(found)
    if problems:
        raise PreparationError(problems[0], preparation)
    return preparation


class OverrideError(ValueError):
    """An approver's override that cannot be applied: ``name`` is the parameter, the message says why."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def parameters_override(
    preparation_answer: dict[str, Any], definition: TaskDefinition, overrides: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Applies an approver's overrides to a prepared answer; returns the new answer and the audit of changes.

    An override must already be of its parameter's type (``coerce_exact``: ``"5"`` is not an int): the approver
    typed JSON, and what they approve is what runs. Raises OverrideError naming a parameter the definition does not
    have or a value of the wrong type.
    """
    declared = {parameter["name"]: parameter for parameter in definition.parameters}
    current = {parameter["name"]: parameter for parameter in preparation_answer.get("parameters", [])}
    changes = []
    for name, value in overrides.items():
        if name not in declared:
            raise OverrideError(name, f"'{definition.task_name}' has no parameter '{name}'.")
        data_type = declared[name]["data_type"]
        try:
            coerced = coerce_exact(value, data_type)
        except ValueError as error:
            raise OverrideError(name, f"Parameter '{name}' ({data_type}): {error}.") from None
        old = current.get(name, {}).get("value")
        current[name] = {
            "name": name,
            "value": coerced,
            "explanation": "Set by the approver.",
            "source": "approver override",
        }
        changes.append({"name": name, "old_value": old, "new_value": coerced})
    # A prepared parameter the definition no longer declares (the catalogue changed since the step was prepared)
    # sorts last instead of failing the approval.
    ordered = sorted(
        current.values(), key=lambda parameter: declared.get(parameter["name"], {}).get("position", math.inf)
    )
    return {**preparation_answer, "parameters": ordered}, changes


def _model_messages(preparation: Preparation) -> list[dict[str, str]]:
    answer_format = (
        'Answer with one JSON object: {"parameters": [{"name": ..., "value": ..., "explanation": ...}]}, one entry '
        "per parameter you can fill; leave out those you cannot."
    )
    system, user = preparation.prompt["messages"]
    return [{"role": "system", "content": f"{system['content']} {answer_format}"}, user]


def step_prepare_with_model(inputs: StepInputs) -> Preparation:
    """The ``llm`` preparer: the model fills the parameters, checked and coerced like any value.

    Explicit bindings and a rerun's overrides keep precedence over the model (they are the flow author's and the
    rerun's intent); a value the model gives that does not fit its type is replaced by the rules preparer's. When the
    model cannot be reached or answers nonsense, the rules preparation stands, with a note saying so.
    ``task_prep_prompt`` holds the messages sent.
    """
    try:
        rules, rules_error = step_prepare(inputs), None
    except PreparationError as error:
        rules, rules_error = error.preparation, error
    messages = _model_messages(rules)
    try:
        answer, _ = chat_json(messages)
    except (ModelUnavailableError, ModelAnswerError) as error:
        fallback = Preparation(
            {"messages": messages}, rules.parameters, f"rules (the model could not be used: {error})"
        )
        if rules_error:
            raise PreparationError(str(rules_error), fallback) from None
        return fallback
    declared = {parameter["name"]: parameter for parameter in inputs.definition.parameters}
    by_rules = {parameter.name: parameter for parameter in rules.parameters}
    chosen: dict[str, PreparedParameter] = {}
    for item in answer.get("parameters", []) if isinstance(answer.get("parameters"), list) else []:
        name = str(item.get("name")) if isinstance(item, dict) else ""
        if name not in declared or (name in by_rules and by_rules[name].source in ("binding", RERUN_OVERRIDE)):
            continue
        try:
            value = coerce(item.get("value"), declared[name]["data_type"])
        except ValueError:
            continue
        explanation = str(item.get("explanation") or "Chosen by the model.")
        chosen[name] = PreparedParameter(name, value, explanation, "model")
    parameters = [chosen.get(name) or by_rules[name] for name in declared if name in chosen or name in by_rules]
    preparation = Preparation(prompt={"messages": messages}, parameters=parameters, preparer_note="llm")
    missing = [
        name for name, parameter in declared.items() if not parameter["optional"] and name not in chosen | by_rules
    ]
    if missing:
        raise PreparationError(
            f"No value for the required parameter '{missing[0]}' of '{inputs.definition.task_name}': neither the "
            "model nor the flow provides it.",
            preparation,
        )
    return preparation


def step_prepare_configured(inputs: StepInputs) -> Preparation:
    """The preparer NEENA_PREPARER names: ``llm`` when a model is configured, else ``rules``."""
    if settings.NEENA_PREPARER == "llm" and llm_configured():
        return step_prepare_with_model(inputs)
    return step_prepare(inputs)
