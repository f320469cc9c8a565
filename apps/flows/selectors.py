"""Flow and flow-request queries, always scoped to the caller's organizations."""

from uuid import UUID

from django.db.models import Prefetch, QuerySet

from apps.accounts.models import User
from apps.accounts.selectors import organization_ids_for_user
from apps.core.exceptions import InputValidationError, NotFoundError
from apps.flows.models import Dependency, Flow, FlowRequest, TaskOperation

NEWEST_FIRST = ("-created_date", "-id")


def flow_request_list_for_user(*, user: User) -> QuerySet[FlowRequest]:
    return FlowRequest.objects.filter(organization_id__in=organization_ids_for_user(user=user)).order_by(*NEWEST_FIRST)


def flow_list_for_user(*, user: User) -> QuerySet[Flow]:
    return Flow.objects.filter(organization_id__in=organization_ids_for_user(user=user)).order_by(*NEWEST_FIRST)


def flow_list_with_steps_for_user(*, user: User) -> QuerySet[Flow]:
    """Flows with their steps and edges fetched in two more queries, whatever the number of flows."""
    return flow_list_for_user(user=user).prefetch_related(
        Prefetch("task_operations", queryset=TaskOperation.objects.order_by("index")),
        Prefetch(
            "dependencies", queryset=Dependency.objects.order_by("source_task_operation", "target_task_operation")
        ),
    )


def flow_and_request_for_user(
    *, user: User, flow_id: UUID, flow_request_id: UUID, location: str = "query"
) -> tuple[Flow, FlowRequest]:
    """The flow and the flow request to execute: 404 when the caller cannot see either, 422 (at ``location``) when
    they belong to different organizations."""
    flow = flow_list_for_user(user=user).filter(id=flow_id).first()
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
