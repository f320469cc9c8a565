"""Flow results: the outcome kept per integration entity (a ticket, a mail), the latest being what clients read."""

import json
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.db import transaction

from apps.flows.models import FlowRequest
from apps.runs.models import FlowResult, FlowRun, TaskRun

# Request metadata keys naming the entity a run is about; webhook triggers set them, API clients may too.
ENTITY_SHORT_NAME_KEY = "integration_short_name"
ENTITY_ID_KEY = "integration_entity_id"
TRIGGER_RUN_KEY = "trigger_run_id"
# Without an entity a result is kept for the flow request itself, under the built-in integration.
DEFAULT_ENTITY_INTEGRATION = "core"


def integration_entity(flow_request: FlowRequest) -> tuple[str, str] | None:
    """(integration short name, entity id) from the request metadata, when the request is about an entity."""
    metadata = flow_request.merged_metadata()
    short_name, entity_id = metadata.get(ENTITY_SHORT_NAME_KEY), metadata.get(ENTITY_ID_KEY)
    if short_name in (None, "") or entity_id in (None, ""):
        return None
    return str(short_name), str(entity_id)


def _trigger_run_id(flow_request: FlowRequest) -> UUID | None:
    value = flow_request.merged_metadata().get(TRIGGER_RUN_KEY)
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None


@transaction.atomic
def flow_result_record(*, flow_run_id: UUID, body: str, task_run_id: UUID | None = None) -> FlowResult:
    """Records a result of the run for its entity (or, without one, for its flow request)."""
    flow_run = FlowRun.objects.select_related("flow_request").get(id=flow_run_id)
    entity = integration_entity(flow_run.flow_request) or (DEFAULT_ENTITY_INTEGRATION, str(flow_run.flow_request_id))
    return FlowResult.objects.create(
        organization_id=flow_run.organization_id,
        flow_run=flow_run,
        trigger_run_id=_trigger_run_id(flow_run.flow_request),
        integration_short_name=entity[0],
        integration_entity_id=entity[1],
        body=body,
        created_by_email=flow_run.triggered_by,
        modified_by_email=flow_run.triggered_by,
    )


def _as_text(result: Any) -> str:
    if isinstance(result, dict) and len(result) == 1:
        (result,) = result.values()
    return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)


def flow_result_finalize(*, flow_run: FlowRun, final_task_runs: Iterable[TaskRun]) -> FlowResult | None:
    """At the end of a completed run about an entity that recorded no result yet: the final steps' outputs as text."""
    if integration_entity(flow_run.flow_request) is None or FlowResult.objects.filter(flow_run=flow_run).exists():
        return None
    body = "\n\n".join(_as_text(task_run.result) for task_run in final_task_runs if task_run.result is not None)
    return flow_result_record(flow_run_id=flow_run.id, body=body)
