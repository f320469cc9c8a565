"""Run and result queries, scoped to the caller's organizations; the metrics scrape's counts alone span them all."""

from datetime import datetime

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    JSONField,
    Min,
    OuterRef,
    Prefetch,
    QuerySet,
    Subquery,
    TextField,
    When,
)
from django.db.models.functions import Cast, Coalesce, Length

from apps.accounts.models import User
from apps.accounts.selectors import organization_ids_for_user
from apps.runs.models import FlowResult, FlowRun, TaskRun, TaskRunAttempt

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
    "parameter_overrides",
    "run_retries",
)
# Where the selectors below put each run's task runs: a plain list, in step order.
TASK_RUNS_ATTRIBUTE = "task_runs_in_order"
# Where they put each task run's latest attempts: a plain list, newest first.
ATTEMPTS_ATTRIBUTE = "attempts_latest"
# Attempt columns no answer shows (the row's audit fields: started_at and ended_at say when).
ATTEMPT_AUDIT_COLUMNS = ("created_date", "modified_date", "created_by_email", "modified_by_email")
# The task-run fields that can be large (a prompt grows with every earlier step's result, a result may be 256 KiB,
# an approved step holds the prepared parameters): in lists, each is embedded only up to
# NEENA_LIST_TASK_RUN_FIELD_CHARS characters of JSON.
LARGE_TASK_RUN_FIELDS = ("task_prep_prompt", "task_prep_answer", "result", "approved_step")


def listed_attribute(field_name: str) -> str:
    """Where a listed task run holds ``field_name``'s value: null when it was too large to embed."""
    return f"listed_{field_name}"


def size_attribute(field_name: str) -> str:
    """Where a listed task run holds the size of ``field_name``'s JSON, in characters as the database writes it."""
    return f"{field_name}_chars"


def flow_run_list_for_user(*, user: User) -> QuerySet[FlowRun]:
    """The caller's runs, with the flow version each executes (joined: answers show its number)."""
    return (
        FlowRun.objects.filter(organization_id__in=organization_ids_for_user(user=user))
        .select_related("flow_version")
        .order_by(*NEWEST_FIRST)
    )


def flow_runs_with_task_run_totals(flow_runs: QuerySet[FlowRun]) -> QuerySet[FlowRun]:
    """The runs, each annotated with how many task runs it has (a subquery counted on the task runs' unique
    (run, step) index, in the runs' own query)."""
    count = (
        TaskRun.objects.filter(flow_run_id=OuterRef("pk"))
        .order_by()
        .values("flow_run_id")
        .annotate(count=Count("id"))
        .values("count")
    )
    return flow_runs.annotate(task_runs_total=Coalesce(Subquery(count, output_field=IntegerField()), 0))


def flow_run_list_with_task_runs_for_user(
    *, user: User, task_runs_skip: int = 0, task_runs_limit: int | None = None
) -> QuerySet[FlowRun]:
    """Runs as the API shows one run: with its task runs from step ``task_runs_skip`` on, at most
    ``task_runs_limit`` of them (default NEENA_DETAIL_TASK_RUNS_LIMIT), and their total, each task run with its latest
    NEENA_DETAIL_TASK_RUN_ATTEMPTS_LIMIT attempts; two more queries whatever the number of runs.

    The task runs come as a list in ``TASK_RUNS_ATTRIBUTE`` (a ``to_attr`` prefetch: Django then builds no queryset
    per run), without the engine's own columns (reading one would cost a query per task run).
    """
    limit = settings.NEENA_DETAIL_TASK_RUNS_LIMIT if task_runs_limit is None else task_runs_limit
    return flow_runs_with_task_run_totals(flow_run_list_for_user(user=user)).prefetch_related(
        task_runs_prefetch(skip=task_runs_skip, limit=limit)
    )


def task_runs_with_attempts(task_runs: QuerySet[TaskRun], *, attempts_limit: int) -> QuerySet[TaskRun]:
    """The task runs, each with how many attempts it had (``attempts_total``: a subquery in the task runs' own query,
    read from the attempts' unique (task run, number) index) and its latest ``attempts_limit`` attempts, newest first,
    in ``ATTEMPTS_ATTRIBUTE`` (one more query whatever the number of task runs: a window over the same index)."""
    total = (
        TaskRunAttempt.objects.filter(task_run_id=OuterRef("pk"))
        .order_by()
        .values("task_run_id")
        .annotate(count=Count("id"))
        .values("count")
    )
    latest = TaskRunAttempt.objects.defer(*ATTEMPT_AUDIT_COLUMNS).order_by("-number")[:attempts_limit]
    return task_runs.annotate(
        attempts_total=Coalesce(Subquery(total, output_field=IntegerField()), 0)
    ).prefetch_related(Prefetch("attempts", queryset=latest, to_attr=ATTEMPTS_ATTRIBUTE))


def _task_runs_in_steps(skip: int, limit: int, attempts_limit: int) -> QuerySet[TaskRun]:
    """Each run's task runs from the ``skip``-th step, at most ``limit`` of them, read by step index.

    A run has one task run per step of the flow it executes, and a flow's steps have indices 0..n-1 without gaps
    (the DAG validation), so the k-th task run in step order is step k: a range of the task runs' unique (run, step)
    index reads exactly the rows shown, however many steps the run has.
    """
    task_runs = (
        TaskRun.objects.defer(*TASK_RUN_ENGINE_COLUMNS)
        .filter(task_operation_index__gte=skip, task_operation_index__lt=skip + limit)
        .order_by("task_operation_index")
    )
    return task_runs_with_attempts(task_runs, attempts_limit=attempts_limit)


def task_runs_prefetch(*, skip: int = 0, limit: int) -> Prefetch:
    """How runs get their task runs for the API (see ``flow_run_list_with_task_runs_for_user``)."""
    queryset = _task_runs_in_steps(skip, limit, settings.NEENA_DETAIL_TASK_RUN_ATTEMPTS_LIMIT)
    return Prefetch("task_runs", queryset=queryset, to_attr=TASK_RUNS_ATTRIBUTE)


def listed_task_runs_prefetch() -> Prefetch:
    """How runs get their task runs in lists: the first NEENA_LIST_TASK_RUNS_LIMIT steps, each with its latest
    NEENA_LIST_TASK_RUN_ATTEMPTS_LIMIT attempts, and of each the large fields only when their JSON is at most
    NEENA_LIST_TASK_RUN_FIELD_CHARS characters.

    The database measures each large field and sends it only when it fits (else null, with its size, so the
    serializer can say it was left out): a page of runs never reads a large value into memory.
    """
    cap = settings.NEENA_LIST_TASK_RUN_FIELD_CHARS
    sizes = {size_attribute(name): Length(Cast(name, TextField())) for name in LARGE_TASK_RUN_FIELDS}
    values = {
        listed_attribute(name): Case(
            When(**{f"{size_attribute(name)}__lte": cap}, then=F(name)), default=None, output_field=JSONField()
        )
        for name in LARGE_TASK_RUN_FIELDS
    }
    queryset = (
        _task_runs_in_steps(0, settings.NEENA_LIST_TASK_RUNS_LIMIT, settings.NEENA_LIST_TASK_RUN_ATTEMPTS_LIMIT)
        .defer(*LARGE_TASK_RUN_FIELDS)
        .annotate(**sizes)
        .annotate(**values)
    )
    return Prefetch("task_runs", queryset=queryset, to_attr=TASK_RUNS_ATTRIBUTE)


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
