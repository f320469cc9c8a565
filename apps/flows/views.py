"""``/api/v1/flow_requests/`` and ``/api/v1/flows/``: read, create, update (``id`` in the body), delete, list."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.exceptions import NotFoundError
from apps.core.query import IdQuerySerializer, parse_query
from apps.core.viewsets import QueryStringViewSet
from apps.flows import services
from apps.flows.models import Flow, FlowRequest
from apps.flows.selectors import flow_and_request_for_user, flow_list_with_steps_for_user, flow_request_list_for_user
from apps.flows.serializers import (
    FlowInputSerializer,
    FlowRequestIdQuerySerializer,
    FlowRequestInputSerializer,
    FlowRequestSerializer,
    FlowRequestUpdateInputSerializer,
    FlowSerializer,
    FlowUpdateInputSerializer,
)
from apps.idempotency.decorators import idempotent
from apps.runs.selectors import flow_run_list_with_task_runs_for_user
from apps.runs.serializers import ExecuteQuerySerializer, FlowRunSerializer
from apps.runs.services.execution import flow_execute


@extend_schema_view(
    list=extend_schema(summary="Read all flow requests"),
    retrieve=extend_schema(summary="Read a flow request", parameters=[IdQuerySerializer]),
    create=extend_schema(summary="Create a flow request", request=FlowRequestInputSerializer),
    update=extend_schema(summary="Update a flow request", request=FlowRequestUpdateInputSerializer),
    destroy=extend_schema(
        summary="Remove a flow request", parameters=[IdQuerySerializer], responses=FlowRequestSerializer
    ),
)
class FlowRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, QueryStringViewSet):
    serializer_class = FlowRequestSerializer

    def get_queryset(self) -> QuerySet[FlowRequest]:
        return flow_request_list_for_user(user=self.user)

    @idempotent()
    def create(self, request: Request) -> Response:
        serializer = FlowRequestInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        flow_request = services.flow_request_create(user=self.user, **serializer.validated_data)
        return Response(FlowRequestSerializer(flow_request).data)

    @idempotent()
    def update(self, request: Request) -> Response:
        serializer = FlowRequestUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        flow_request = services.flow_request_update(
            user=self.user, flow_request=self.get_object_by_id(data.pop("id")), **data
        )
        return Response(FlowRequestSerializer(flow_request).data)

    def destroy(self, request: Request) -> Response:
        flow_request = self.get_object()
        body = FlowRequestSerializer(flow_request).data
        services.flow_request_delete(flow_request=flow_request)
        return Response(body)


@extend_schema_view(
    list=extend_schema(summary="Read all flows"),
    retrieve=extend_schema(summary="Read a flow", parameters=[IdQuerySerializer]),
    create=extend_schema(
        summary="Create a flow",
        description="Task operations and dependencies are validated as a DAG; every problem is listed in the 422.",
        request=FlowInputSerializer,
    ),
    update=extend_schema(summary="Update a flow", request=FlowUpdateInputSerializer),
    destroy=extend_schema(summary="Remove a flow", parameters=[IdQuerySerializer], responses=FlowSerializer),
)
class FlowViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, QueryStringViewSet):
    serializer_class = FlowSerializer
    # Generating saves a flow, so even its GET form needs the write scope.
    action_scopes = {"generate": "write"}

    def get_queryset(self) -> QuerySet[Flow]:
        return flow_list_with_steps_for_user(user=self.user)

    def _render(self, flow: Flow) -> Response:
        return Response(FlowSerializer(self.get_queryset().get(id=flow.id)).data)

    @idempotent()
    def create(self, request: Request) -> Response:
        serializer = FlowInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._render(services.flow_create(user=self.user, **serializer.to_service_kwargs()))

    @idempotent()
    def update(self, request: Request) -> Response:
        serializer = FlowUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        flow = self.get_object_by_id(serializer.validated_data["id"])
        return self._render(services.flow_update(user=self.user, flow=flow, **serializer.to_service_kwargs()))

    def destroy(self, request: Request) -> Response:
        flow = self.get_object()
        body = FlowSerializer(flow).data
        services.flow_delete(flow=flow)
        return Response(body)

    @extend_schema(
        summary="Generate a flow from a flow request",
        description="Plans a flow for the request's instructions (NEENA_PLANNER: rules, or llm with rules as the "
        "fallback), validates and saves it, and links the request to it. 422 names the part of the request no task "
        "covers, or the parameter nothing provides.",
        parameters=[FlowRequestIdQuerySerializer],
        request=None,
        responses=FlowSerializer,
    )
    # Planning may ask a model over the network, which must not happen inside a transaction.
    @idempotent(in_transaction=False)
    @action(detail=False, methods=["get", "post"], url_path="generate")
    def generate(self, request: Request) -> Response:
        self.refuse_body_fields()
        flow_request_id = parse_query(FlowRequestIdQuerySerializer, request)["flow_request_id"]
        flow_request = flow_request_list_for_user(user=self.user).filter(id=flow_request_id).first()
        if flow_request is None:
            raise NotFoundError("Flow request not found.")
        return self._render(services.flow_generate(user=self.user, flow_request=flow_request))

    @extend_schema(
        summary="Execute a flow",
        description="Creates a flow run for the flow and the flow request and answers at once; workers run it.",
        parameters=[ExecuteQuerySerializer],
        request=None,
        responses=FlowRunSerializer,
    )
    @idempotent()
    @action(detail=False, methods=["post"], url_path="execute")
    def execute(self, request: Request) -> Response:
        self.refuse_body_fields()
        query = parse_query(ExecuteQuerySerializer, request)
        flow, flow_request = flow_and_request_for_user(
            user=self.user, flow_id=query["flow_id"], flow_request_id=query["flow_request_id"]
        )
        flow_run = flow_execute(user=self.user, flow=flow, flow_request=flow_request)
        return Response(
            FlowRunSerializer(flow_run_list_with_task_runs_for_user(user=self.user).get(id=flow_run.id)).data
        )
