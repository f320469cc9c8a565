"""``/api/v1/flow_runs/`` (reading runs) and ``/api/v1/flow_results/`` (the latest result per entity)."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.exceptions import NotFoundError
from apps.core.query import IdQuerySerializer, parse_query
from apps.core.viewsets import QueryStringViewSet
from apps.flows.selectors import flow_list_for_user
from apps.runs.models import FlowResult, FlowRun
from apps.runs.selectors import (
    flow_result_latest_for_entity,
    flow_result_latest_for_run,
    flow_result_list_for_user,
    flow_run_list_for_user,
    flow_run_list_with_task_runs_for_user,
)
from apps.runs.serializers import (
    FlowIdQuerySerializer,
    FlowResultQuerySerializer,
    FlowResultSerializer,
    FlowRunPreviewSerializer,
    FlowRunSerializer,
    FlowRunWithResultSerializer,
)


@extend_schema_view(
    list=extend_schema(summary="Read all flow runs"),
    retrieve=extend_schema(summary="Read a flow run", parameters=[IdQuerySerializer]),
)
class FlowRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, QueryStringViewSet):
    serializer_class = FlowRunSerializer

    def get_queryset(self) -> QuerySet[FlowRun]:
        if self.action == "preview":
            return flow_run_list_for_user(user=self.user)
        return flow_run_list_with_task_runs_for_user(user=self.user)

    @extend_schema(
        summary="Read all flow runs for a flow",
        parameters=[FlowIdQuerySerializer],
        responses=FlowRunSerializer(many=True),
    )
    @action(detail=False, methods=["get"], url_path="all_for_flow_id")
    def all_for_flow_id(self, request: Request) -> Response:
        flow_id = parse_query(FlowIdQuerySerializer, request)["flow_id"]
        if not flow_list_for_user(user=self.user).filter(id=flow_id).exists():
            raise NotFoundError("Flow not found.")
        page = self.paginate_queryset(self.get_queryset().filter(flow_id=flow_id))
        return Response(FlowRunSerializer(page, many=True).data)

    @extend_schema(
        summary="Read a flow run with its flow result",
        parameters=[IdQuerySerializer],
        responses=FlowRunWithResultSerializer,
    )
    @action(detail=False, methods=["get"], url_path="with_flow_result")
    def with_flow_result(self, request: Request) -> Response:
        flow_run = self.get_object()
        flow_run.result = flow_result_latest_for_run(flow_run=flow_run)
        return Response(FlowRunWithResultSerializer(flow_run).data)

    @extend_schema(summary="Read flow runs without their task runs", responses=FlowRunPreviewSerializer(many=True))
    @action(detail=False, methods=["get"], url_path="preview")
    def preview(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return Response(FlowRunPreviewSerializer(page, many=True).data)


class FlowResultViewSet(QueryStringViewSet):
    serializer_class = FlowResultSerializer

    def get_queryset(self) -> QuerySet[FlowResult]:
        return flow_result_list_for_user(user=self.user)

    @extend_schema(
        summary="Read the latest flow result for an integration entity",
        parameters=[FlowResultQuerySerializer],
        responses=FlowResultSerializer,
    )
    def retrieve(self, request: Request) -> Response:
        query = parse_query(FlowResultQuerySerializer, request)
        result = flow_result_latest_for_entity(user=self.user, **query)
        if result is None:
            raise NotFoundError("No flow result for this integration entity.")
        return Response(FlowResultSerializer(result).data)
