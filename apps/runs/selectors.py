"""Run and result queries, scoped to the caller's organizations; the metrics scrape's counts alone span them all."""

from datetime import datetime

from django.db.models import Count, Min, Prefetch, QuerySet

from apps.accounts.models import User
from apps.accounts.selectors import organization_ids_for_user
from apps.runs.models import FlowResult, FlowRun, TaskRun

NEWEST_FIRST = ("-created_date", "-id")
# Task-run columns the engine keeps for itself (leases, queueing, the approval of the side effect, the row's audit
# fields): no API response shows them, and a page of runs reads hundreds of task runs.
TASK_RUN_ENGINE_COLUMNS = (
    "created_date",
    "modified_date",
    "created_by_email",
    "modified_by_email",
    "task_operation",
    "lease_expires_at",
    "enqueued_at",
    "approved_at",
)
# Where flow_run_list_with_task_runs_for_user() puts each run's task runs: a plain list, in step order.
TASK_RUNS_ATTRIBUTE = "task_runs_in_order"


def flow_run_list_for_user(*, user: User) -> QuerySet[FlowRun]:
    """The caller's runs, with the flow version each executes (joined: answers show its number)."""
    return (
        FlowRun.objects.filter(organization_id__in=organization_ids_for_user(user=user))
        .select_related("flow_version")
        .order_by(*NEWEST_FIRST)
    )


def flow_run_list_with_task_runs_for_user(*, user: User) -> QuerySet[FlowRun]:
    """Runs with their task runs, as the API shows them, in one more query whatever the number of runs.

    The task runs come as a list in ``TASK_RUNS_ATTRIBUTE`` (a ``to_attr`` prefetch: Django then builds no queryset
    per run), without the engine's own columns (reading one would cost a query per task run).
    """
    return flow_run_list_for_user(user=user).prefetch_related(task_runs_prefetch())


def task_runs_prefetch() -> Prefetch:
    """How runs get their task runs for the API (see ``flow_run_list_with_task_runs_for_user``)."""
    return Prefetch(
        "task_runs",
        queryset=TaskRun.objects.defer(*TASK_RUN_ENGINE_COLUMNS).order_by("task_operation_index"),
        to_attr=TASK_RUNS_ATTRIBUTE,
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


def flow_run_status_counts() -> dict[str, int]:
    """How many runs each status has, over every organization (the metrics scrape; never an API answer)."""
    rows = FlowRun.objects.order_by().values_list("status").annotate(count=Count("id"))
    return dict(rows)


def flow_run_approval_backlog() -> tuple[int, datetime | None]:
    """How many runs wait for approval, over every organization, and since when the oldest has waited."""
    backlog = FlowRun.objects.filter(status=FlowRun.Status.AWAITING_APPROVAL).aggregate(
        count=Count("id"), oldest=Min("approval_requested_at")
    )
    return backlog["count"], backlog["oldest"]
