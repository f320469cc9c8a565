"""Replays: a rerun from a chosen step, and retrying every failed run of a flow.

A rerun from step k (``run_rerun_from``) is a new run of the source run's own flow version for the same request. The
steps downstream of k (k included) run as in any run: prepared afresh, parked for approval as the organization's
policy says. Every other step is a copy: a completed task run holding the source step's preparation and result,
with ``copied_from`` naming the source task run; it is never prepared nor run again. Copies need results, so every
step not downstream of k must have completed in the source run (else 409 ``source_step_not_completed``).

Only the pinned version is offered: a copied result is what a step of that version produced, and the steps after it
prepare their parameters from it; on another version the same index may be another task, with other outputs.

Retrying a flow's failed runs (``flow_runs_retry_failed``) calls ``run_retry`` for each, in its own transaction:
each run's move from failed is conditional under its row lock, so two of these started at once retry each run once.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from apps.accounts.models import User
from apps.core.exceptions import ConflictError, ErrorItem, InputValidationError
from apps.flows.dag import descendants
from apps.flows.models import Dependency, Flow
from apps.integrations.models import TaskDefinition
from apps.runs.models import FlowRun, TaskRun
from apps.runs.services.control import run_retry
from apps.runs.services.preparation import OverrideError, parameters_override
from apps.runs.services.run_creation import flow_execute, run_sources_check


def _overrides_checked(definition: TaskDefinition, index: int, parameters: dict[str, Any]) -> dict[str, Any]:
    """The overrides for the chosen step, each of its parameter's exact type (as an approver's overrides are:
    ``parameters_override``); a 422 naming every unknown or mistyped one."""
    checked: dict[str, Any] = {}
    problems: list[ErrorItem] = []
    for name, value in parameters.items():
        loc = ["body", "parameters", name]
        if name not in definition.parameter_names:
            message = f"Step {index} ('{definition.task_name}') has no parameter '{name}'."
            problems.append(ErrorItem(loc, message, "unknown"))
            continue
        try:
            _, changes = parameters_override({}, definition, {name: value})
        except OverrideError as error:
            problems.append(ErrorItem(loc, str(error), "invalid_override"))
            continue
        checked[name] = changes[0]["new_value"]
    if problems:
        raise InputValidationError(problems)
    return checked


def run_rerun_from(
    *, flow_run: FlowRun, user: User, task_operation_index: int, parameters: dict[str, Any] | None = None
) -> FlowRun:
    """A new run of ``flow_run``'s version that copies the steps not downstream of ``task_operation_index`` and runs
    from it, the step's preparation taking ``parameters`` first (see the module).

    Steps: (1) the step must be one of the version's (422 at the query's ``task_operation_index``); (2) the overrides
    must be parameters of its task, of their types (422 naming each); (3) every step not downstream of it must have
    completed in the source run (409 ``source_step_not_completed``, naming them); (4) the run is created as any rerun
    (``flow_execute``: a deleted flow or request, a task gone from the catalogue among the steps to run, 409).
    """
    version = flow_run.flow_version
    operations = {operation.index: operation for operation in version.task_operations.select_related("task_definition")}
    chosen = operations.get(task_operation_index)
    if chosen is None:
        raise InputValidationError.single(
            ["query", "task_operation_index"],
            f"Version {version.number} of the flow has no step {task_operation_index} "
            f"(its steps are 0 to {len(operations) - 1}).",
            "unknown_step",
        )
    overrides = _overrides_checked(chosen.task_definition, task_operation_index, parameters or {})
    edges = list(
        Dependency.objects.filter(flow_version=version).values_list("source_task_operation", "target_task_operation")
    )
    downstream = {task_operation_index} | descendants(edges, [task_operation_index])
    sources = {task_run.task_operation_index: task_run for task_run in flow_run.task_runs.all()}
    kept = sorted(set(operations) - downstream)
    unfinished = [index for index in kept if index not in sources or sources[index].status != TaskRun.Status.COMPLETED]
    if unfinished:
        steps = ", ".join(
            f"step {index} ({sources[index].status if index in sources else 'missing'})" for index in unfinished[:5]
        )
        raise ConflictError(
            f"A rerun from step {task_operation_index} copies the results of the steps not downstream of it, but in "
            f"the source run {steps} did not complete. Rerun from an earlier step, or rerun the whole run.",
            code="source_step_not_completed",
        )
    if flow_run.flow_request.organization_id != flow_run.organization_id:
        raise ConflictError(
            "The flow request no longer belongs to the run's organization.", code="organization_mismatch"
        )
    return flow_execute(
        user=user,
        flow=flow_run.flow,
        flow_request=flow_run.flow_request,
        triggered_by=user.email,
        rerun_of=flow_run,
        flow_version=version,
        copies={index: sources[index] for index in kept},
        parameter_overrides={task_operation_index: overrides} if overrides else {},
        rerun_from_index=task_operation_index,
    )


@dataclass
class RetryReport:
    """What retrying a flow's failed runs did: how many runs were queued again, how many of those found could not be
    retried (retried meanwhile by someone else, or refused: a task gone from the catalogue, say), and whether more
    failed runs than NEENA_RETRY_FAILED_LIMIT were found (call again for the rest)."""

    queued: int = 0
    skipped: int = 0
    more: bool = False


def flow_runs_retry_failed(
    *,
    flow: Flow,
    user: User | None,
    since: datetime | None = None,
    actor: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> RetryReport:
    """Retries the flow's failed runs (those that failed at or after ``since``, when given), oldest failure first, at
    most NEENA_RETRY_FAILED_LIMIT of them.

    Each is retried by ``run_retry`` in its own transaction (no lock is held from one run to the next); a run no
    longer failed when its turn comes (another caller retried it) is skipped, not retried twice. ``progress`` is
    called with (done, total) after each run. A deleted flow's runs are not retried (409 ``flow_deleted``); a run
    whose request was deleted is skipped, as ``run_retry`` refuses it.
    """
    run_sources_check(flow=flow)
    failed = FlowRun.objects.filter(organization_id=flow.organization_id, flow=flow, status=FlowRun.Status.FAILED)
    if since is not None:
        failed = failed.filter(end_time__gte=since)
    limit = settings.NEENA_RETRY_FAILED_LIMIT
    found = list(failed.order_by("end_time", "id").values_list("id", flat=True)[: limit + 1])
    report = RetryReport(more=len(found) > limit)
    chosen = found[:limit]
    for done, flow_run in enumerate(FlowRun.objects.filter(id__in=chosen).only("id").order_by("end_time", "id"), 1):
        try:
            run_retry(flow_run=flow_run, user=user, actor=actor)
        except ConflictError:
            report.skipped += 1
        else:
            report.queued += 1
        if progress is not None:
            progress(done, len(chosen))
    return report
