"""``/api/v1/flow_runs/`` (reading runs) and ``/api/v1/flow_results/`` (the latest result per entity)."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.exceptions import InputValidationError, NotFoundError
from apps.core.query import IdQuerySerializer, parse_query
from apps.core.viewsets import QueryStringViewSet
from apps.flows.selectors import flow_and_request_for_user, flow_list_for_user
from apps.idempotency.decorators import idempotent
from apps.runs.models import FlowResult, FlowRun
from apps.runs.rendering import flow_runs_listed, flow_runs_rendered
from apps.runs.selectors import (
    flow_result_latest_for_entity,
    flow_result_latest_for_run,
    flow_result_list_for_user,
    flow_run_list_for_user,
    flow_run_list_with_task_runs_for_user,
)
from apps.runs.serializers import (
    ApproveInputSerializer,
    DecisionInputSerializer,
    FlowIdQuerySerializer,
    FlowResultQuerySerializer,
    FlowResultSerializer,
    FlowRunCreateSerializer,
    FlowRunIdQuerySerializer,
    FlowRunPreviewSerializer,
    FlowRunSerializer,
    FlowRunWithResultSerializer,
    ListedFlowRunSerializer,
    RerunFromInputSerializer,
    RerunFromQuerySerializer,
    RerunQuerySerializer,
    RetryFailedInputSerializer,
    RetryFailedQuerySerializer,
    RetryReportSerializer,
    TaskRunsPageQuerySerializer,
)
from apps.runs.services.approval import run_approve, run_reject
from apps.runs.services.control import run_cancel, run_rerun, run_retry
from apps.runs.services.replays import flow_runs_retry_failed, run_rerun_from
from apps.runs.services.run_creation import flow_execute


@extend_schema_view(
    list=extend_schema(
        summary="Read all flow runs",
        description="Each run embeds its first NEENA_LIST_TASK_RUNS_LIMIT task runs (100 by default), with "
        "task_runs_total and task_runs_truncated; a task run's task_prep_prompt, task_prep_answer or result longer "
        "than NEENA_LIST_TASK_RUN_FIELD_CHARS is null and named in its omitted_fields. Read the run for the rest.",
        responses=ListedFlowRunSerializer(many=True),
    ),
    retrieve=extend_schema(
        summary="Read a flow run",
        description="The run with its task runs, whole: up to NEENA_DETAIL_TASK_RUNS_LIMIT of them (1000 by default, "
        "every step of any flow), paged with task_runs_skip and task_runs_limit.",
        parameters=[IdQuerySerializer, TaskRunsPageQuerySerializer],
    ),
)
class FlowRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, QueryStringViewSet):
    serializer_class = FlowRunSerializer
    action_scopes = {"approve": "approve", "reject": "approve"}

    def _run_from_query(self) -> FlowRun:
        return self.get_object_by_id(parse_query(FlowRunIdQuerySerializer, self.request)["flow_run_id"])

    def _render(self, flow_run: FlowRun) -> Response:
        return Response(FlowRunSerializer(self.get_queryset().get(id=flow_run.id)).data)

    @extend_schema(
        summary="Create a flow run",
        description="The same as POST /flows/execute: creates the run and queues it. Status fields in the body are "
        "ignored, except that a terminal status or a decided approval_status is a 422 (status_not_allowed).",
        request=FlowRunCreateSerializer,
        responses=FlowRunSerializer,
    )
    @idempotent()
    def create(self, request: Request) -> Response:
        serializer = FlowRunCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        flow, flow_request = flow_and_request_for_user(
            user=self.user,
            flow_id=serializer.validated_data["flow"],
            flow_request_id=serializer.validated_data["flow_request"],
            location="body",
        )
        return self._render(flow_execute(user=self.user, flow=flow, flow_request=flow_request))

    @extend_schema(
        summary="Approve a flow run",
        description="Resumes a run waiting for approval, optionally with new parameter values (audited). 409 when "
        "the run is not waiting for approval. Needs the approve scope.",
        parameters=[FlowRunIdQuerySerializer],
        request=ApproveInputSerializer,
        responses=FlowRunSerializer,
    )
    @idempotent()
    @action(detail=False, methods=["put"], url_path="approve")
    def approve(self, request: Request) -> Response:
        flow_run = self._run_from_query()
        serializer = ApproveInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._render(run_approve(flow_run=flow_run, user=self.user, **serializer.validated_data))

    @extend_schema(
        summary="Reject a flow run",
        description="Cancels a run waiting for approval, keeping the reason. 409 when it is not waiting.",
        parameters=[FlowRunIdQuerySerializer],
        request=DecisionInputSerializer,
        responses=FlowRunSerializer,
    )
    @idempotent()
    @action(detail=False, methods=["put"], url_path="reject")
    def reject(self, request: Request) -> Response:
        flow_run = self._run_from_query()
        serializer = DecisionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._render(run_reject(flow_run=flow_run, user=self.user, **serializer.validated_data))

    @extend_schema(
        summary="Cancel a flow run",
        description="Steps not started are cancelled; 409 when the run has already ended.",
        parameters=[FlowRunIdQuerySerializer],
        request=DecisionInputSerializer,
        responses=FlowRunSerializer,
    )
    @idempotent()
    @action(detail=False, methods=["post"], url_path="cancel")
    def cancel(self, request: Request) -> Response:
        flow_run = self._run_from_query()
        serializer = DecisionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._render(run_cancel(flow_run=flow_run, user=self.user, reason=serializer.validated_data["comment"]))

    @extend_schema(
        summary="Retry a failed flow run",
        description="Re-runs the failed steps and those after them, keeping completed results; 409 not_failed unless "
        "failed, flow_deleted or flow_request_deleted when the run's flow or request was deleted.",
        parameters=[FlowRunIdQuerySerializer],
        request=None,
        responses=FlowRunSerializer,
    )
    @idempotent()
    @action(detail=False, methods=["post"], url_path="retry")
    def retry(self, request: Request) -> Response:
        self.refuse_body_fields()
        return self._render(run_retry(flow_run=self._run_from_query(), user=self.user))

    @extend_schema(
        summary="Rerun a flow run",
        description="Starts a new run of the same flow and flow request from the beginning, on the run's own flow "
        "version (version=pinned, the default) or the flow's latest (version=latest); returns the new run. 409 "
        "flow_deleted when the flow was deleted.",
        parameters=[RerunQuerySerializer],
        request=None,
        responses=FlowRunSerializer,
    )
    @idempotent()
    @action(detail=False, methods=["post"], url_path="rerun")
    def rerun(self, request: Request) -> Response:
        query = parse_query(RerunQuerySerializer, request)
        self.refuse_body_fields()
        flow_run = self.get_object_by_id(query["flow_run_id"])
        return self._render(run_rerun(flow_run=flow_run, user=self.user, version=query["version"]))

    @extend_schema(
        summary="Rerun a flow run from a step",
        description="Starts a new run of the run's own flow version for the same request that copies the steps not "
        "downstream of task_operation_index (completed, with the source's results; copied_from names the source "
        "task run) and runs from that step, as any run (approval included). parameters set values of that step "
        "only, each of its type (422 naming an unknown or mistyped one). 409 source_step_not_completed when a step "
        "to copy did not complete in the source run.",
        parameters=[RerunFromQuerySerializer],
        request=RerunFromInputSerializer,
        responses=FlowRunSerializer,
    )
    @idempotent()
    @action(detail=False, methods=["post"], url_path="rerun_from")
    def rerun_from(self, request: Request) -> Response:
        query = parse_query(RerunFromQuerySerializer, request)
        serializer = RerunFromInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        flow_run = self.get_object_by_id(query["flow_run_id"])
        return self._render(
            run_rerun_from(
                flow_run=flow_run,
                user=self.user,
                task_operation_index=query["task_operation_index"],
                parameters=serializer.validated_data["parameters"],
            )
        )

    @extend_schema(
        summary="Retry every failed run of a flow",
        description="Retries the flow's failed runs (with since, those that failed at or after it), oldest failure "
        "first, at most NEENA_RETRY_FAILED_LIMIT (100) per call; flow_id and since in the query or the body. Each run "
        "is retried as flow_runs/retry does; a run no longer failed (retried meanwhile) or whose request was deleted "
        "is skipped, so two calls at once retry each run once. 409 flow_deleted when the flow was deleted. Answers "
        "how many were queued.",
        parameters=[RetryFailedQuerySerializer],
        request=RetryFailedInputSerializer,
        responses=RetryReportSerializer,
    )
    # Each run is retried in its own transaction, so no lock is held across the batch; repeating the call is
    # harmless (what it retried is no longer failed), so the effect need not share the answer's transaction.
    @idempotent(in_transaction=False)
    @action(detail=False, methods=["post"], url_path="retry_failed")
    def retry_failed(self, request: Request) -> Response:
        query = parse_query(RetryFailedQuerySerializer, request)
        serializer = RetryFailedInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        given = _given_once(query, serializer.validated_data)
        if "flow_id" not in given:
            raise InputValidationError.single(
                ["query", "flow_id"], "Give flow_id, in the query or in the body.", "missing"
            )
        flow = flow_list_for_user(user=self.user, include_deleted=True).filter(id=given["flow_id"]).first()
        if flow is None:
            raise NotFoundError("Flow not found.")
        report = flow_runs_retry_failed(flow=flow, user=self.user, since=given.get("since"))
        return Response(RetryReportSerializer(report).data)

    def get_queryset(self) -> QuerySet[FlowRun]:
        if self.action == "preview":
            return flow_run_list_for_user(user=self.user)
        if self.action in ("retrieve", "with_flow_result"):
            return flow_run_list_with_task_runs_for_user(
                user=self.user, **parse_query(TaskRunsPageQuerySerializer, self.request)
            )
        return flow_run_list_with_task_runs_for_user(user=self.user)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(flow_runs_listed(flow_run_list_for_user(user=self.user)))
        return Response(flow_runs_rendered(page or []))

    @extend_schema(
        summary="Read all flow runs for a flow",
        description="The runs as flow_runs/all shows them: at most NEENA_LIST_TASK_RUNS_LIMIT task runs each, large "
        "task-run fields left out.",
        parameters=[FlowIdQuerySerializer],
        responses=ListedFlowRunSerializer(many=True),
    )
    @action(detail=False, methods=["get"], url_path="all_for_flow_id")
    def all_for_flow_id(self, request: Request) -> Response:
        flow_id = parse_query(FlowIdQuerySerializer, request)["flow_id"]
        # A deleted flow's runs stay readable here: they are its history.
        if not flow_list_for_user(user=self.user, include_deleted=True).filter(id=flow_id).exists():
            raise NotFoundError("Flow not found.")
        page = self.paginate_queryset(flow_runs_listed(flow_run_list_for_user(user=self.user).filter(flow_id=flow_id)))
        return Response(flow_runs_rendered(page or []))

    @extend_schema(
        summary="Read a flow run with its flow result",
        description="As flow_runs/?id=, task runs paged the same way, plus the run's latest flow result.",
        parameters=[IdQuerySerializer, TaskRunsPageQuerySerializer],
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


def _given_once(query: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The parameters given in the query or the body; a 422 for one given in both with different values."""
    for name in query.keys() & body.keys():
        if query[name] != body[name]:
            raise InputValidationError.single(
                ["body", name], f"'{name}' is given in the query and the body with different values.", "conflict"
            )
    return {**query, **body}


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
