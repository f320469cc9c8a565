"""Flow and flow-request queries, always scoped to the caller's organizations; deleted ones are left out, except
where a run's history needs its flow (``include_deleted``)."""

from uuid import UUID

from django.db.models import F, Prefetch, QuerySet

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


def flow_request_linked_for_user(*, user: User, flow: Flow) -> FlowRequest | None:
    """The request a flow runs for when the caller names none (the original web frontend's execute): the newest (by
    ``created_date``, then id) not-deleted request of the flow's organization whose ``flow`` is this flow, which is
    the one ``flows/generate`` linked or the frontend's save linked last. Requests of the caller's other
    organizations are left out, so the choice can never be an organization mismatch."""
    return flow_request_list_for_user(user=user).filter(flow=flow, organization_id=flow.organization_id).first()


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
    *, user: User, flow_id: UUID, flow_request_id: UUID | None, location: str = "query"
) -> tuple[Flow, FlowRequest]:
    """The flow and the flow request to execute: 404 when the caller cannot see either, 422 (at ``location``) when
    they belong to different organizations. Without ``flow_request_id``, the request linked to the flow
    (``flow_request_linked_for_user``), or a 422 when the flow has none."""
    flow = flow_list_for_user(user=user).select_related("latest_version").filter(id=flow_id).first()
    if flow is None:
        raise NotFoundError("Flow not found.")
    field = "flow_request_id" if location == "query" else "flow_request"
    if flow_request_id is None:
        flow_request = flow_request_linked_for_user(user=user, flow=flow)
        if flow_request is None:
            raise InputValidationError.single(
                [location, field],
                "The flow has no flow request linked to it (none was generated for it or saved with it): give "
                f"{field}.",
                "no_flow_request",
            )
        return flow, flow_request
    flow_request = flow_request_list_for_user(user=user).filter(id=flow_request_id).first()
    if flow_request is None:
        raise NotFoundError("Flow request not found.")
    if flow.organization_id != flow_request.organization_id:
        raise InputValidationError.single(
            [location, field],
            "The flow request belongs to another organization than the flow.",
            "organization_mismatch",
        )
    return flow, flow_request


# --- Flows as code ------------------------------------------------------------------------------------------------


def _flow_version_for_export(*, flows: QuerySet[Flow], flow_id: UUID, number: int | None) -> FlowVersion:
    """Version ``number`` (the latest when None) of the flow among ``flows``, with its flow, its steps with their task
    definitions and integrations, and its edges, in four queries. 404 when the flow or the version is not there."""
    flow = flows.filter(id=flow_id).first()
    if flow is None:
        raise NotFoundError("Flow not found.")
    versions = FlowVersion.objects.filter(flow=flow).select_related("flow")
    versions = versions.filter(flow__latest_version=F("id")) if number is None else versions.filter(number=number)
    version = versions.prefetch_related(
        Prefetch(
            "task_operations",
            queryset=TaskOperation.objects.select_related("task_definition__integration").order_by("index"),
        ),
        Prefetch(
            "dependencies", queryset=Dependency.objects.order_by("source_task_operation", "target_task_operation")
        ),
    ).first()
    if version is None:
        raise NotFoundError(f"The flow has no version {number}.", code="version_not_found")
    return version


def flow_version_for_export_for_user(*, user: User, flow_id: UUID, number: int | None) -> FlowVersion:
    """A version to export, of a flow the caller can see (``flows/export``)."""
    return _flow_version_for_export(flows=flow_list_for_user(user=user), flow_id=flow_id, number=number)


def flow_version_for_export(*, flow_id: UUID, number: int | None) -> FlowVersion:
    """A version to export, of any live flow: for ``manage.py flows export``, which the operator runs with the
    database's own access, no caller's organizations to scope by."""
    return _flow_version_for_export(flows=Flow.objects.filter(deleted_at__isnull=True), flow_id=flow_id, number=number)
