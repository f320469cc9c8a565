"""Choosing and running the planner, with the catalogue index cached per catalogue version."""

import logging
import time
from functools import lru_cache
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db.models import Count, Max, QuerySet

from apps.core.metrics import record_planning
from apps.flows.models import FlowRequest
from apps.flows.planning import llm, rules
from apps.flows.planning.catalogue import Catalogue
from apps.flows.planning.rules import PlanDraft, PlanningError
from apps.integrations.models import TaskDefinition
from apps.integrations.selectors import task_definition_list

logger = logging.getLogger(__name__)


@lru_cache(maxsize=16)
def _catalogue_for(organization_id: UUID | None, version: tuple[Any, ...]) -> Catalogue:
    return Catalogue.from_definitions(_definitions(organization_id))


def _definitions(organization_id: UUID | None) -> QuerySet[TaskDefinition]:
    return task_definition_list(organization_ids=None if organization_id is None else [organization_id])


def catalogue_current(organization_id: UUID | None = None) -> Catalogue:
    """The live catalogue an organization plans with (the shared one and its own MCP servers' tools), its index
    rebuilt only when a definition changed (every sync bumps modified_date)."""
    version = _definitions(organization_id).aggregate(count=Count("id"), changed=Max("modified_date"))
    return _catalogue_for(organization_id, (version["count"], version["changed"]))


def plan_request(flow_request: FlowRequest, catalogue: Catalogue, *, instructions: str | None = None) -> PlanDraft:
    """Plans with NEENA_PLANNER; the LLM planner falls back to rules when the model cannot be reached.

    ``instructions``, when given, are planned from instead of the request's own (see ``flow_plan``). Each call
    is observed in ``neena_planning_duration_seconds``, by the planner that answered and whether it could plan.
    """
    started = time.perf_counter()
    try:
        draft = _plan(flow_request, catalogue, instructions=instructions)
    except PlanningError:
        record_planning(planner=settings.NEENA_PLANNER, planned=False, seconds=time.perf_counter() - started)
        raise
    record_planning(planner=draft.planner, planned=True, seconds=time.perf_counter() - started)
    return draft


def _plan(flow_request: FlowRequest, catalogue: Catalogue, *, instructions: str | None) -> PlanDraft:
    name = flow_request.request_name
    instructions = flow_request.request_instructions if instructions is None else instructions
    metadata_keys = set(flow_request.merged_metadata())
    if settings.NEENA_PLANNER == llm.PLANNER_NAME and llm.configured():
        try:
            return llm.plan(instructions=instructions, name=name, metadata_keys=metadata_keys, catalogue=catalogue)
        except llm.ModelUnavailableError as error:
            logger.warning("LLM planner unavailable, planning with rules: %s", error)
            draft = rules.plan(instructions=instructions, name=name, metadata_keys=metadata_keys, catalogue=catalogue)
            draft.notes.append(f"Planned with the rules planner: the model could not be reached ({error}).")
            return draft
    return rules.plan(instructions=instructions, name=name, metadata_keys=metadata_keys, catalogue=catalogue)
