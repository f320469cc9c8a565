"""Flow and flow-request queries, always scoped to the caller's organizations; deleted ones are left out, except
where a run's history needs its flow (``include_deleted``)."""

from uuid import UUID

from django.db.models import Prefetch, QuerySet

from apps.accounts.models import User
from apps.accounts.selectors import organization_ids_for_user
from apps.core.exceptions import InputValidationError, NotFoundError
from apps.flows.models import Dependency, Flow, FlowRequest, FlowVersion, TaskOperation

NEWEST_FIRST = ("-created_date", "-id")


def flow_request_list_for_user(*, user: User) -> QuerySet[FlowRequest]:
    return FlowRequest.objects.filter(
        organization_id__in=organization_ids_for_user(user=user), deleted_at__isnull=True
    ).order_by(*NEWEST_FIRST)


def flow_list_for_user(*, user: User, include_deleted: bool = False) -> QuerySet[Flow]:
    flows = Flow.objects.filter(organization_id__in=organization_ids_for_user(user=user))
    if not include_deleted:
        flows = flows.filter(deleted_at__isnull=True)
    return flows.order_by(*NEWEST_FIRST)


def _steps_prefetches(prefix: str) -> list[Prefetch]:
    """The steps and edges of the version at ``prefix`` (a path to a FlowVersion, or "" for versions themselves)."""
    return [
        Prefetch(f"{prefix}task_operations", queryset=TaskOperation.objects.order_by("index")),
        Prefetch(
            f"{prefix}dependencies",
            queryset=Dependency.objects.order_by("source_task_operation", "target_task_operation"),
        ),
    ]


def flow_list_with_steps_for_user(*, user: User) -> QuerySet[Flow]:
    """Flows with their latest version (joined) and its steps and edges fetched in two more queries, whatever the
    number of flows."""
    return (
        flow_list_for_user(user=user)
        .select_related("latest_version")
        .prefetch_related(*_steps_prefetches("latest_version__"))
    )


def flow_at_version_for_user(*, user: User, flow_id: UUID, number: int | None) -> Flow:
    """The flow showing version ``number`` (``Flow.shown_version``), or its latest when None; 404 when the caller
    cannot see the flow or it has no such version."""
    if number is None:
        flow = flow_list_with_steps_for_user(user=user).filter(id=flow_id).first()
        if flow is None:
            raise NotFoundError("Flow not found.")
        return flow
    flow = flow_list_for_user(user=user).select_related("latest_version").filter(id=flow_id).first()
    if flow is None:
        raise NotFoundError("Flow not found.")
    version = FlowVersion.objects.filter(flow=flow, number=number).prefetch_related(*_steps_prefetches("")).first()
    if version is None:
        raise NotFoundError(f"The flow has no version {number}.", code="version_not_found")
    flow.shown_version = version
    return flow


def flow_version_list_for_user(*, user: User, flow_id: UUID) -> QuerySet[FlowVersion]:
    """A flow's versions, newest first; 404 when the caller cannot see the flow."""
    if not flow_list_for_user(user=user).filter(id=flow_id).exists():
        raise NotFoundError("Flow not found.")
    return FlowVersion.objects.filter(flow_id=flow_id).order_by("-number")


def flow_versions_for_user(*, user: User, flow_id: UUID, numbers: tuple[int, ...]) -> dict[int, FlowVersion]:
    """Some of a flow's versions by number, with their steps and edges; 404 naming a number the flow does not have
    (or when the caller cannot see the flow)."""
    if not flow_list_for_user(user=user).filter(id=flow_id).exists():
        raise NotFoundError("Flow not found.")
    versions = {
        version.number: version
        for version in FlowVersion.objects.filter(flow_id=flow_id, number__in=numbers).prefetch_related(
            *_steps_prefetches("")
        )
    }
    missing = sorted(set(numbers) - versions.keys())
    if missing:
        raise NotFoundError(f"The flow has no version {missing[0]}.", code="version_not_found")
    return versions


def flow_version_and_previous(*, version: FlowVersion) -> tuple[FlowVersion, FlowVersion | None]:
    """The version and the one before it (None for version 1), each with its steps (and their task definitions) and
    edges, in three queries: what the admin's version page shows and compares. Not scoped: the admin scopes the
    version it was asked for (a flow's versions share its organization)."""
    steps = [
        Prefetch("task_operations", queryset=TaskOperation.objects.select_related("task_definition").order_by("index")),
        Prefetch(
            "dependencies", queryset=Dependency.objects.order_by("source_task_operation", "target_task_operation")
        ),
    ]
    loaded = {
        loaded.number: loaded
        for loaded in FlowVersion.objects.filter(
            flow_id=version.flow_id, number__in=[version.number - 1, version.number]
        ).prefetch_related(*steps)
    }
    return loaded[version.number], loaded.get(version.number - 1)


def flow_and_request_for_user(
    *, user: User, flow_id: UUID, flow_request_id: UUID, location: str = "query"
) -> tuple[Flow, FlowRequest]:
    """The flow and the flow request to execute: 404 when the caller cannot see either, 422 (at ``location``) when
    they belong to different organizations."""
    flow = flow_list_for_user(user=user).select_related("latest_version").filter(id=flow_id).first()
    if flow is None:
        raise NotFoundError("Flow not found.")
    flow_request = flow_request_list_for_user(user=user).filter(id=flow_request_id).first()
    if flow_request is None:
        raise NotFoundError("Flow request not found.")
    if flow.organization_id != flow_request.organization_id:
        field = "flow_request_id" if location == "query" else "flow_request"
        raise InputValidationError.single(
            [location, field],
            "The flow request belongs to another organization than the flow.",
            "organization_mismatch",
        )
    return flow, flow_request
