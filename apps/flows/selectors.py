"""Flow and flow-request queries, always scoped to the caller's organizations."""

from django.db.models import Prefetch, QuerySet

from apps.accounts.models import User
from apps.accounts.selectors import organization_ids_for_user
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
