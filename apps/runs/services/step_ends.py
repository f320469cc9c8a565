"""Recording a step's end: what of its outcome can be stored (``apps.core.storable_text``), the end written once,
the step counted and logged, then what the end unblocks readied (``apps.runs.services.readiness``). Running the step
up to its end is ``apps.runs.services.step_execution``.
"""

import logging
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from apps.core.exceptions import Location
from apps.core.metrics import record_step_ended
from apps.core.storable_text import json_storable, storable
from apps.runs.models import TaskRun
from apps.runs.services.memory import RunMemory
from apps.runs.services.readiness import StepOutcome, flow_run_advance, ready_after
from apps.runs.services.transitions import step_move

logger = logging.getLogger(__name__)

Status = TaskRun.Status


def _storable_result(result: dict[str, Any]) -> tuple[dict[str, Any], list[Location]]:
    """The result as it is stored: plain JSON with every NUL and lone surrogate replaced by U+FFFD (PostgreSQL's
    jsonb refuses NUL, UTF-8 cannot encode a surrogate), truncated past NEENA_MAX_RESULT_BYTES; and where text was
    replaced."""
    plain, replaced, encoded = json_storable(result)
    size = len(encoded.encode())
    if size <= settings.NEENA_MAX_RESULT_BYTES:
        return dict(plain), replaced
    return {"truncated": True, "size_bytes": size, "preview": encoded[:2000]}, replaced


def storable_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """A step's changes as they can be stored (see ``apps.core.storable_text``).

    A result holding text that cannot be stored fails the step, with a copy of the result in which that text is
    U+FFFD: the service's answer is not what it said, so no later step should act on it as if it were, and the
    copy shows what came back (a side effect that happened is visible, and is not repeated). The step's own texts
    (the error, the preparation) are only cleaned.
    """
    storable_changes = dict(changes)
    for name in ("task_prep_prompt", "task_prep_answer"):
        if name in changes:
            plain, replaced, _ = json_storable(changes[name])
            if replaced:
                storable_changes[name] = plain
    if "error" in changes:
        storable_changes["error"] = storable(changes["error"])
    if changes.get("result") is not None:
        storable_changes["result"], replaced = _storable_result(changes["result"])
        if replaced and changes.get("status") == Status.COMPLETED:
            where = ", ".join(".".join(map(str, ["result", *path])) for path in replaced[:5])
            storable_changes["status"] = Status.FAILED
            storable_changes["error"] = (
                f"The result could not be stored as returned: {where} held text that is not valid Unicode (a NUL "
                "or a lone surrogate). It is kept with U+FFFD in its place."
            )
    return storable_changes


def step_end(
    task_run: TaskRun, memory: RunMemory, from_status: str, *, may_claim: int = 0, **changes: Any
) -> StepOutcome:
    """Records the step's end, then readies what it unblocks (claiming up to ``may_claim`` core steps for this job).

    The end is committed first and what it unblocks is checked after, so of two steps ending at once the later check
    sees both ends: a join or the run's end is never missed, and a step readied twice is still claimed once. A worker
    that dies between the two leaves the check to the sweeper (``flow_runs_stalled``). A failure is rare and changes
    more (the steps below it are skipped): it is checked under the run's lock, over the whole run.

    An end that cannot be stored (whatever the reason but the database being unreachable) fails the step with the
    reason, written without the outcome: its call happened and must not be made again, which a step left running
    would be once its lease expired. When the database is unreachable the step stays as it is and the sweeper ends
    it (a side effect fails, ``runs_sweep``).
    """
    ended: dict[str, Any] = {"end_time": timezone.now(), "lease_expires_at": None}
    try:
        moved = step_move(task_run, from_status, **ended, **storable_changes(changes))
    except (OperationalError, InterfaceError):
        raise
    except Exception as error:
        logger.exception("The end of step %s could not be stored", task_run.id)
        what = "result" if changes.get("status") == Status.COMPLETED else "step's outcome"
        message = storable(f"The {what} could not be stored: {type(error).__name__}: {error}")
        changes = {"status": Status.FAILED, "error": message, "result": None}
        moved = step_move(task_run, from_status, **ended, **changes)
    if not moved:
        return StepOutcome()
    _record_end(task_run, task_run.status)
    if task_run.status != Status.COMPLETED:
        return StepOutcome(ready=flow_run_advance(flow_run_id=task_run.flow_run_id))
    memory.remember(task_run.task_operation_index, task_run.result)
    return ready_after(task_run.flow_run, memory, task_run.task_operation_index, may_claim)


def step_labels(task_run: TaskRun) -> tuple[str, str]:
    """The step's integration and task names, from the catalogue rows the claim attached (no query)."""
    if task_run.task_operation is None:
        return "unknown", "unknown"
    definition = task_run.task_operation.task_definition
    return definition.integration.short_name, definition.task_name


def _record_end(task_run: TaskRun, status: str | None) -> None:
    """Counts and logs a completed or failed step, with the time since its claim."""
    if status not in (Status.COMPLETED, Status.FAILED):
        return
    integration, task = step_labels(task_run)
    started, ended = task_run.start_time, task_run.end_time
    seconds = (ended - started).total_seconds() if started and ended else None
    record_step_ended(integration=integration, task=task, status=status, seconds=seconds)
    if status == Status.COMPLETED:
        logger.info("Step %s %s completed", integration, task)
    else:
        logger.info("Step %s %s failed: %s", integration, task, task_run.error)
