"""Flow and flow-request rules: validated DAGs saved in one transaction, scoped to organizations.

A flow's steps and edges are saved as an immutable version: creating a flow makes version 1, and an update that
changes any step, edge or binding makes the next one (``apps.flows.versions`` compares them). Deleting a flow or a
flow request only marks it deleted, so the runs that executed it keep their history.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Membership, User
from apps.accounts.roles import role_require
from apps.accounts.selectors import organization_for_write
from apps.audit.services import audit_event_record
from apps.core.exceptions import ConflictError, ErrorItem, InputValidationError, NotFoundError
from apps.flows import bindings
from apps.flows.dag import ancestors, topological_order, validate_dag
from apps.flows.models import Dependency, Flow, FlowRequest, FlowVersion, TaskOperation
from apps.flows.planning.rules import PlanDraft, PlanningError
from apps.flows.planning.service import catalogue_current, plan_request
from apps.flows.selectors import flow_list_for_user
from apps.flows.versions import content_of, diff_is_empty, diff_summary, first_version_summary, version_diff
from apps.integrations.datatypes import coerce
from apps.integrations.models import TaskDefinition
from apps.integrations.selectors import task_definition_list


@dataclass(frozen=True)
class TaskOperationDraft:
    """One step as a client or the planner describes it, before it is saved."""

    index: int
    name: str
    task_definition: UUID
    instruction: str = ""
    x: float | None = None
    y: float | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DependencyDraft:
    source_task_operation: int
    target_task_operation: int
    instruction: str = ""


def _unknown_output(reference: bindings.Reference, upstream: TaskDefinition | None) -> str | None:
    """Why a step reference reads an output its step's definition does not declare, or None when it may.

    Only the first field after ``result`` is checked (what lies inside an output is the service's own shape), and a
    definition that declares no outputs may return anything.
    """
    if upstream is None or not upstream.output_parameters or not reference.result_path:
        return None
    declared = [output["name"] for output in upstream.output_parameters]
    field = reference.result_path[0]
    if field in declared:
        return None
    return (
        f"'{{{{ {reference.text} }}}}' reads '{field}' of step {reference.step}, but '{upstream.task_name}' outputs "
        f"only {', '.join(declared)}."
    )


def _binding_problems(
    position: int,
    draft: TaskOperationDraft,
    definition: TaskDefinition,
    definitions_by_index: Mapping[int, TaskDefinition | None],
    edges: Sequence[tuple[int, int]],
) -> list[ErrorItem]:
    """Bindings must name the definition's parameters; literals must fit the type; templates must read from steps that
    run before this one, and only outputs those steps' definitions declare."""
    problems = []
    declared = {parameter["name"]: parameter for parameter in definition.parameters}
    upstream: set[int] | None = None
    for name, value in draft.parameters.items():
        loc: list[str | int] = ["body", "task_operations", position, "parameters", name]
        if name not in declared:
            problems.append(
                ErrorItem(loc, f"'{definition.task_name}' has no parameter '{name}'.", "binding.unknown_parameter")
            )
            continue
        if not bindings.is_template(value):
            try:
                coerce(value, declared[name]["data_type"])
            except ValueError as error:
                problems.append(ErrorItem(loc, f"Parameter '{name}': {error}.", "binding.type_mismatch"))
            continue
        try:
            references = bindings.template_references(value)
        except ValueError as error:
            problems.append(ErrorItem(loc, str(error), "binding.invalid_template"))
            continue
        for reference in references:
            if reference.step is None:
                continue
            if upstream is None:
                upstream = ancestors(len(definitions_by_index), edges, draft.index)
            if reference.step not in upstream:
                problems.append(
                    ErrorItem(
                        loc,
                        f"'{{{{ {reference.text} }}}}' reads step {reference.step}, which does not run before step "
                        f"{draft.index}.",
                        "binding.not_upstream",
                    )
                )
                continue
            unknown_output = _unknown_output(reference, definitions_by_index[reference.step])
            if unknown_output:
                problems.append(ErrorItem(loc, unknown_output, "binding.unknown_output"))
    return problems


def flow_validate(
    *,
    task_operations: Sequence[TaskOperationDraft],
    dependencies: Sequence[DependencyDraft],
    organization_id: UUID,
) -> tuple[dict[UUID, TaskDefinition], list[int]]:
    """Checks a draft flow; raises InputValidationError listing every problem with its location.

    Steps: the DAG's shape (indices, edges, cycles), then that every task definition exists and is live, then the
    explicit parameter bindings. Returns the task definitions by id and the topological order.
    """
    if not task_operations:
        raise InputValidationError.single(
            ["body", "task_operations"], "A flow needs at least one task operation.", "dag.empty"
        )
    edges = [(dependency.source_task_operation, dependency.target_task_operation) for dependency in dependencies]
    dag_problems, order = validate_dag([draft.index for draft in task_operations], edges)
    if dag_problems:
        raise InputValidationError(
            [ErrorItem(["body", *problem.where], problem.message, problem.code) for problem in dag_problems]
        )

    definition_ids = {draft.task_definition for draft in task_operations}
    definitions = {
        definition.id: definition
        # The shared catalogue and the organization's own MCP tools: another organization's tools are not found.
        for definition in task_definition_list(organization_ids=[organization_id]).filter(id__in=definition_ids)
    }
    definitions_by_index = {draft.index: definitions.get(draft.task_definition) for draft in task_operations}
    problems: list[ErrorItem] = []
    for position, draft in enumerate(task_operations):
        definition = definitions.get(draft.task_definition)
        if definition is None:
            problems.append(
                ErrorItem(
                    ["body", "task_operations", position, "task_definition"],
                    f"Task definition {draft.task_definition} does not exist or was removed.",
                    "task_definition.not_found",
                )
            )
        else:
            problems.extend(_binding_problems(position, draft, definition, definitions_by_index, edges))
    if problems:
        raise InputValidationError(problems)
    return definitions, order


def _flow_resolve(*, user: User, flow_id: UUID | None, organization_id: UUID) -> Flow | None:
    """The flow a flow request points at: one the user can see, in the request's own organization."""
    if flow_id is None:
        return None
    flow = flow_list_for_user(user=user).filter(id=flow_id, organization_id=organization_id).first()
    if flow is None:
        raise InputValidationError.single(
            ["body", "flow"], "Flow not found in the request's organization.", "not_found"
        )
    return flow


@transaction.atomic
def flow_request_create(
    *,
    user: User,
    request_instructions: str,
    request_metadata: Any = None,
    request_name: str = "",
    flow: UUID | None = None,
    organization: UUID | None = None,
) -> FlowRequest:
    target = organization_for_write(user=user, organization_id=organization)
    return FlowRequest.objects.create(
        organization=target,
        request_instructions=request_instructions,
        request_metadata=[] if request_metadata is None else request_metadata,
        request_name=request_name,
        flow=_flow_resolve(user=user, flow_id=flow, organization_id=target.id),
        created_by_email=user.email,
        modified_by_email=user.email,
    )


@transaction.atomic
def flow_request_update(
    *,
    user: User,
    flow_request: FlowRequest,
    request_instructions: str,
    request_metadata: Any = None,
    request_name: str = "",
    flow: UUID | None = None,
    organization: UUID | None = None,
) -> FlowRequest:
    """Replaces the request's fields (PUT semantics); it may move to another organization of the user's."""
    target = organization_for_write(user=user, organization_id=organization or flow_request.organization_id)
    flow_request.organization = target
    flow_request.request_instructions = request_instructions
    flow_request.request_metadata = [] if request_metadata is None else request_metadata
    flow_request.request_name = request_name
    flow_request.flow = _flow_resolve(user=user, flow_id=flow, organization_id=target.id)
    flow_request.modified_by_email = user.email
    flow_request.save()
    return flow_request


@transaction.atomic
def flow_request_delete(*, user: User, flow_request: FlowRequest) -> None:
    """Marks the request deleted: gone from lists and reads, while the runs made for it keep it as their history."""
    role_require(user=user, organization_id=flow_request.organization_id, role=Membership.Role.MEMBER)
    flow_request.deleted_at = timezone.now()
    flow_request.modified_by_email = user.email
    flow_request.save(update_fields=["deleted_at", "modified_by_email", "modified_date"])


def _version_create(
    *,
    user: User,
    flow: Flow,
    number: int,
    summary: str,
    task_operations: Sequence[TaskOperationDraft],
    dependencies: Sequence[DependencyDraft],
    order: list[int],
) -> FlowVersion:
    """Writes a new version with its steps and edges (never changed afterwards) and makes it the flow's latest."""
    version = FlowVersion.objects.create(
        flow=flow,
        number=number,
        summary=summary,
        created_by=user,
        created_by_email=user.email,
        modified_by_email=user.email,
    )
    sorted_position = {index: position for position, index in enumerate(order)}
    TaskOperation.objects.bulk_create(
        [
            TaskOperation(
                flow_version=version,
                flow=flow,
                index=draft.index,
                sorted_index=sorted_position[draft.index],
                task_definition_id=draft.task_definition,
                name=draft.name,
                instruction=draft.instruction,
                x=draft.x,
                y=draft.y,
                parameters=draft.parameters,
                created_by_email=user.email,
                modified_by_email=user.email,
            )
            for draft in task_operations
        ],
        batch_size=500,
    )
    Dependency.objects.bulk_create(
        [
            Dependency(
                flow_version=version,
                flow=flow,
                source_task_operation=draft.source_task_operation,
                target_task_operation=draft.target_task_operation,
                instruction=draft.instruction,
                created_by_email=user.email,
                modified_by_email=user.email,
            )
            for draft in dependencies
        ],
        batch_size=500,
    )
    flow.latest_version = version
    audit_event_record(
        organization_id=flow.organization_id,
        actor=user,
        action="flow_version.created",
        object_type="flow_version",
        object_id=version.id,
        before=None if number == 1 else {"flow": flow.id, "number": number - 1},
        after={
            "flow": flow.id,
            "flow_name": flow.name,
            "number": number,
            "summary": summary,
            "task_operations": len(task_operations),
            "dependencies": len(dependencies),
        },
    )
    return version


@transaction.atomic
def flow_create(
    *,
    user: User,
    name: str,
    task_operations: Sequence[TaskOperationDraft],
    dependencies: Sequence[DependencyDraft] = (),
    organization: UUID | None = None,
) -> Flow:
    """Validates the DAG and saves the flow with version 1 (its steps and edges) in one transaction."""
    target = organization_for_write(user=user, organization_id=organization)
    _, order = flow_validate(task_operations=task_operations, dependencies=dependencies, organization_id=target.id)
    flow = Flow.objects.create(
        organization=target, name=name, created_by_email=user.email, modified_by_email=user.email
    )
    _version_create(
        user=user,
        flow=flow,
        number=1,
        summary=first_version_summary(content_of(task_operations, dependencies)),
        task_operations=task_operations,
        dependencies=dependencies,
        order=order,
    )
    flow.save(update_fields=["latest_version", "modified_date"])
    return flow


@transaction.atomic
def flow_update(
    *,
    user: User,
    flow: Flow,
    name: str,
    task_operations: Sequence[TaskOperationDraft],
    dependencies: Sequence[DependencyDraft] = (),
    organization: UUID | None = None,
) -> Flow:
    """Replaces the flow's name, steps and edges (PUT semantics) after the same validation as creation.

    Steps: the organization may be named but never changed (422); the draft is validated; the flow's row is locked,
    so concurrent updates make consecutive versions; a draft whose steps, edges or bindings differ from the latest
    version's becomes the next version, with a summary of the change. A change of the name alone makes no version.
    """
    if organization is not None and organization != flow.organization_id:
        raise InputValidationError.single(
            ["body", "organization"], "A flow's organization cannot change.", "organization_immutable"
        )
    organization_for_write(user=user, organization_id=flow.organization_id)
    definitions, order = flow_validate(
        task_operations=task_operations, dependencies=dependencies, organization_id=flow.organization_id
    )
    flow = Flow.objects.select_for_update(of=("self",)).select_related("latest_version").get(id=flow.id)
    if flow.deleted_at is not None:
        raise NotFoundError("Flow not found.")
    latest = flow.current_version
    diff = version_diff(
        content_of(latest.task_operations.all(), latest.dependencies.all()), content_of(task_operations, dependencies)
    )
    if not diff_is_empty(diff):
        names = {str(definition.id): definition.task_name for definition in definitions.values()}
        names.update(
            (str(definition_id), task_name)
            for definition_id, task_name in latest.task_operations.values_list(
                "task_definition_id", "task_definition__task_name"
            )
        )
        _version_create(
            user=user,
            flow=flow,
            number=latest.number + 1,
            summary=diff_summary(diff, names),
            task_operations=task_operations,
            dependencies=dependencies,
            order=order,
        )
    flow.name = name
    flow.modified_by_email = user.email
    flow.save(update_fields=["name", "latest_version", "modified_by_email", "modified_date"])
    return flow


@transaction.atomic
def flow_delete(*, user: User, flow: Flow) -> None:
    """Marks the flow deleted: gone from lists and reads, and it can no longer run; its versions, runs, task runs,
    results and approval audit stay, and runs already started go on executing their version."""
    role_require(user=user, organization_id=flow.organization_id, role=Membership.Role.MEMBER)
    flow.deleted_at = timezone.now()
    flow.modified_by_email = user.email
    flow.save(update_fields=["deleted_at", "modified_by_email", "modified_date"])


def _layout(step_count: int, edges: Sequence[tuple[int, int]]) -> list[tuple[float, float]]:
    """Canvas positions for a generated flow: a column per topological depth, a row per step in that column."""
    order, _ = topological_order(step_count, edges)
    depth = dict.fromkeys(range(step_count), 0)
    for index in order:
        for source, target in edges:
            if source == index:
                depth[target] = max(depth[target], depth[index] + 1)
    rows: dict[int, int] = {}
    positions = []
    for index in range(step_count):
        row = rows.get(depth[index], 0)
        rows[depth[index]] = row + 1
        positions.append((depth[index] * 240.0, row * 120.0))
    return positions


def flow_plan(*, flow_request: FlowRequest, instructions: str | None = None) -> PlanDraft:
    """Plans a flow for the request, outside any transaction: the llm planner waits on a model for seconds, and a
    transaction open meanwhile would hold its locks as long (STYLE.md, "Slow work outside the transaction").

    A request the planner cannot cover is a 422 naming the part of it no task fits (or the parameter nothing
    provides). ``instructions``, when given, are what is planned from instead of the request's (a webhook plans from
    its template, its event's values left as data).
    """
    try:
        catalogue = catalogue_current(flow_request.organization_id)
        return plan_request(flow_request, catalogue, instructions=instructions)
    except PlanningError as error:
        raise InputValidationError(
            [ErrorItem(["flow_request", "request_instructions"], problem, "planning") for problem in error.problems]
        ) from None


def _planned_from(flow_request: FlowRequest) -> tuple[Any, ...]:
    """What of a request a plan depends on (and whose organization the flow is saved in)."""
    return (
        flow_request.organization_id,
        flow_request.request_name,
        flow_request.request_instructions,
        flow_request.request_metadata,
    )


@transaction.atomic
def flow_generated_save(*, user: User, flow_request: FlowRequest, draft: PlanDraft) -> Flow:
    """Saves a planned flow like a hand-made one (validated, laid out) and links the request to it, in one short
    transaction.

    The request is locked and compared with the one the plan was made from: deleted meanwhile is a 404; edited or
    moved to another organization meanwhile is a 409 (``flow_request_changed``), since the plan no longer describes
    it. A planned flow that fails validation (a task definition removed meanwhile) is refused with a 422.
    """
    current = FlowRequest.objects.select_for_update().filter(id=flow_request.id, deleted_at__isnull=True).first()
    if current is None:
        raise NotFoundError("Flow request not found.")
    if _planned_from(current) != _planned_from(flow_request):
        raise ConflictError(
            "The flow request changed while its flow was planned; generate the flow again.",
            code="flow_request_changed",
        )
    positions = _layout(len(draft.steps), draft.edges)
    flow = flow_create(
        user=user,
        name=draft.name,
        organization=flow_request.organization_id,
        task_operations=[
            TaskOperationDraft(
                index=position,
                name=step.name,
                task_definition=step.entry.id,
                instruction=step.instruction,
                x=positions[position][0],
                y=positions[position][1],
                parameters=step.parameters,
            )
            for position, step in enumerate(draft.steps)
        ],
        dependencies=[
            DependencyDraft(source, target, f"Step {target} uses what step {source} produced.")
            for source, target in draft.edges
        ],
    )
    flow.planner = draft.planner
    flow.planning_notes = draft.notes
    flow.save(update_fields=["planner", "planning_notes", "modified_date"])
    flow_request.flow = flow
    flow_request.modified_by_email = user.email
    flow_request.save(update_fields=["flow", "modified_by_email", "modified_date"])
    return flow


def flow_generate(*, user: User, flow_request: FlowRequest, instructions: str | None = None) -> Flow:
    """Plans a flow for the request (``flow_plan``, no transaction open), then saves it and links the request to it
    (``flow_generated_save``, one short transaction). Errors as those two raise them: 422 for a request that cannot
    be planned or a plan that fails validation, 404 or 409 for a request deleted or changed while it was planned.

    The member role is checked before planning, so a viewer never costs a model call."""
    role_require(user=user, organization_id=flow_request.organization_id, role=Membership.Role.MEMBER)
    draft = flow_plan(flow_request=flow_request, instructions=instructions)
    return flow_generated_save(user=user, flow_request=flow_request, draft=draft)
