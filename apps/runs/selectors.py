"""Run and result queries, always scoped to the caller's organizations."""

from django.db.models import Prefetch, QuerySet

from apps.accounts.models import User
from apps.accounts.selectors import organization_ids_for_user
from apps.runs.models import FlowResult, FlowRun, TaskRun

NEWEST_FIRST = ("-created_date", "-id")


def flow_run_list_for_user(*, user: User) -> QuerySet[FlowRun]:
    return FlowRun.objects.filter(organization_id__in=organization_ids_for_user(user=user)).order_by(*NEWEST_FIRST)


def flow_run_list_with_task_runs_for_user(*, user: User) -> QuerySet[FlowRun]:
    """Runs with their task runs in one more query, whatever the number of runs."""
    return flow_run_list_for_user(user=user).prefetch_related(
        Prefetch("task_runs", queryset=TaskRun.objects.order_by("task_operation_index"))
    )


def flow_result_list_for_user(*, user: User) -> QuerySet[FlowResult]:
    return FlowResult.objects.filter(organization_id__in=organization_ids_for_user(user=user)).order_by(*NEWEST_FIRST)


def flow_result_latest_for_run(*, flow_run: FlowRun) -> FlowResult | None:
    return FlowResult.objects.filter(flow_run=flow_run).order_by(*NEWEST_FIRST).first()


def flow_result_latest_for_entity(
    *, user: User, integration_short_name: str, integration_entity_id: str
) -> FlowResult | None:
    """The newest result any run in the caller's organizations recorded for this entity."""
    return (
        flow_result_list_for_user(user=user)
        .filter(integration_short_name=integration_short_name, integration_entity_id=integration_entity_id)
        .first()
    )
