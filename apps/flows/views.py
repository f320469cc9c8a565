"""``/api/v1/flow_requests/`` and ``/api/v1/flows/``: read, create, update (``id`` in the body), delete, list; a flow's
versions and the diff of two; a flow exported and imported as a portable document."""

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
from apps.flows.documents import flow_export, flow_import
from apps.flows.models import Flow, FlowRequest
from apps.flows.selectors import (
    flow_and_request_for_user,
    flow_at_version_for_user,
    flow_list_with_steps_for_user,
    flow_request_list_for_user,
    flow_version_for_export_for_user,
    flow_version_list_for_user,
    flow_versions_for_user,
)
from apps.flows.serializers import (
    FlowDiffQuerySerializer,
    FlowDiffSerializer,
    FlowDocumentSerializer,
    FlowImportInputSerializer,
    FlowImportQuerySerializer,
    FlowInputSerializer,
    FlowReadQuerySerializer,
    FlowRequestIdQuerySerializer,
    FlowRequestInputSerializer,
    FlowRequestSerializer,
    FlowRequestUpdateInputSerializer,
    FlowSerializer,
    FlowUpdateInputSerializer,
    FlowVersionSerializer,
    FlowVersionsQuerySerializer,
)
from apps.flows.versions import content_of, version_diff
from apps.idempotency.decorators import idempotent
from apps.runs.selectors import flow_run_list_with_task_runs_for_user
from apps.runs.serializers import ExecuteQuerySerializer, FlowRunSerializer
from apps.runs.services.run_creation import flow_execute


@extend_schema_view(
    list=extend_schema(summary="Read all flow requests"),
    retrieve=extend_schema(summary="Read a flow request", parameters=[IdQuerySerializer]),
    create=extend_schema(summary="Create a flow request", request=FlowRequestInputSerializer),
    update=extend_schema(summary="Update a flow request", request=FlowRequestUpdateInputSerializer),
    destroy=extend_schema(
        summary="Remove a flow request",
        description="The request disappears from lists and reads; runs made for it keep it as their history.",
        parameters=[IdQuerySerializer],
        responses=FlowRequestSerializer,
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
        data = dict(serializer.validated_data)
        data["organization"] = self.target_organization(data.get("organization"))
        flow_request = services.flow_request_create(user=self.user, **data)
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
        services.flow_request_delete(user=self.user, flow_request=flow_request)
        return Response(body)


@extend_schema_view(
    list=extend_schema(summary="Read all flows"),
    retrieve=extend_schema(
        summary="Read a flow",
        description="The latest version, or with ?version=N that version (404 when the flow has none such).",
        parameters=[FlowReadQuerySerializer],
    ),
    create=extend_schema(
        summary="Create a flow",
        description="Task operations and dependencies are validated as a DAG; every problem is listed in the 422. "
        "The flow starts at version 1.",
        request=FlowInputSerializer,
    ),
    update=extend_schema(
        summary="Update a flow",
        description="A change of the steps, edges or bindings makes a new version (runs already made keep theirs); "
        "a change of the name alone does not. The organization cannot change (422).",
        request=FlowUpdateInputSerializer,
    ),
    destroy=extend_schema(
        summary="Remove a flow",
        description="The flow disappears from lists and reads and cannot run again; its runs, their steps, results "
        "and approvals stay readable through the run endpoints.",
        parameters=[IdQuerySerializer],
        responses=FlowSerializer,
    ),
)
class FlowViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, QueryStringViewSet):
    serializer_class = FlowSerializer
    # Generating saves a flow, so even its GET form needs the write scope.
    action_scopes = {"generate": "write"}

    def get_queryset(self) -> QuerySet[Flow]:
        return flow_list_with_steps_for_user(user=self.user)

    def _render(self, flow: Flow) -> Response:
        return Response(FlowSerializer(self.get_queryset().get(id=flow.id)).data)

    def retrieve(self, request: Request) -> Response:
        query = parse_query(FlowReadQuerySerializer, request)
        flow = flow_at_version_for_user(user=self.user, flow_id=query["id"], number=query.get("version"))
        return Response(FlowSerializer(flow).data)

    @idempotent()
    def create(self, request: Request) -> Response:
        serializer = FlowInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.to_service_kwargs()
        data["organization"] = self.target_organization(data["organization"])
        return self._render(services.flow_create(user=self.user, **data))

    @idempotent()
    def update(self, request: Request) -> Response:
        serializer = FlowUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        flow = self.get_object_by_id(serializer.validated_data["id"])
        return self._render(services.flow_update(user=self.user, flow=flow, **serializer.to_service_kwargs()))

    def destroy(self, request: Request) -> Response:
        flow = self.get_object()
        body = FlowSerializer(flow).data
        services.flow_delete(user=self.user, flow=flow)
        return Response(body)

    @extend_schema(
        summary="Read a flow's versions",
        description="Newest first: each version's number, when and by whom it was made, and what it changed.",
        parameters=[FlowVersionsQuerySerializer],
        responses=FlowVersionSerializer(many=True),
    )
    @action(detail=False, methods=["get"], url_path="versions")
    def versions(self, request: Request) -> Response:
        flow_id = parse_query(FlowVersionsQuerySerializer, request)["flow_id"]
        page = self.paginate_queryset(flow_version_list_for_user(user=self.user, flow_id=flow_id))
        return Response(FlowVersionSerializer(page, many=True).data)

    @extend_schema(
        summary="Compare two versions of a flow",
        description="The steps added, removed and changed (fields and parameters, matched by index) and the edges "
        "added, removed and changed from version `from` to version `to`.",
        parameters=[FlowDiffQuerySerializer],
        responses=FlowDiffSerializer,
    )
    @action(detail=False, methods=["get"], url_path="diff")
    def diff(self, request: Request) -> Response:
        query = parse_query(FlowDiffQuerySerializer, request)
        numbers = (query["from"], query["to"])
        versions = flow_versions_for_user(user=self.user, flow_id=query["flow_id"], numbers=numbers)
        before, after = (versions[number] for number in numbers)
        diff = version_diff(
            content_of(before.task_operations.all(), before.dependencies.all()),
            content_of(after.task_operations.all(), after.dependencies.all()),
        )
        body = {"flow_id": query["flow_id"], "from_version": numbers[0], "to_version": numbers[1], **diff}
        return Response(FlowDiffSerializer(body).data)

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
        description="Creates a flow run for the flow and the flow request and answers at once; workers run it. "
        "The original web frontend's form, ?id=<flow id> with no flow_request_id, runs the flow for the newest "
        "not-deleted flow request of the flow's organization linked to it (a 422 at flow_request_id when none is).",
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

    # --- Flows as code ---------------------------------------------------------------------------------------------

    @extend_schema(
        summary="Export a flow as a portable document",
        description="The latest version, or with ?version=N that one, as a JSON document that names each step's task "
        "by its integration's short_name and the task's name (no ids), with keys sorted, so it can be kept in git and "
        "imported into another organization or deployment. 404 for a flow you cannot see or a version it lacks.",
        parameters=[FlowReadQuerySerializer],
        responses=FlowDocumentSerializer,
    )
    @action(detail=False, methods=["get"], url_path="export")
    def export(self, request: Request) -> Response:
        query = parse_query(FlowReadQuerySerializer, request)
        version = flow_version_for_export_for_user(user=self.user, flow_id=query["id"], number=query.get("version"))
        return Response(flow_export(version=version))

    @extend_schema(
        summary="Import a flow from a portable document",
        description="Saves the document as a new flow (in `organization`, else X-Neena-Organization's, else your "
        "personal one), or with "
        "?flow_id= as the next version of that flow (a document equal to its latest version makes none). Every task "
        "is looked up by integration short_name and task name among the live task definitions; the 422 lists each "
        "one not found at its step. Then the same validation as creating a flow.",
        parameters=[FlowImportQuerySerializer],
        request=FlowImportInputSerializer,
        responses=FlowSerializer,
    )
    @idempotent()
    @action(detail=False, methods=["post"], url_path="import")
    def import_flow(self, request: Request) -> Response:
        flow_id = parse_query(FlowImportQuerySerializer, request).get("flow_id")
        flow = None if flow_id is None else self.get_object_by_id(flow_id)
        serializer = FlowImportInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        organization = serializer.validated_data["organization"]
        # A new flow goes where any create goes (the body's organization, else X-Neena-Organization's); a new version
        # stays in its flow's organization, which a body naming another refuses.
        flow = flow_import(
            user=self.user,
            document=serializer.to_document(),
            organization=self.target_organization(organization) if flow is None else organization,
            flow=flow,
        )
        return self._render(flow)
