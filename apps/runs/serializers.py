"""Run, task-run and flow-result shapes of the documented API."""

from typing import Any

from django.conf import settings
from rest_framework import serializers

from apps.core.pagination import MAX_SKIP
from apps.core.serializers import AttributeModelSerializer, StrictInputSerializer
from apps.core.validators import reject_nul_characters
from apps.flows.serializers import MAX_TASK_OPERATIONS
from apps.runs.models import FlowResult, FlowRun, TaskRun, TaskRunAttempt
from apps.runs.selectors import (
    ATTEMPTS_ATTRIBUTE,
    LARGE_TASK_RUN_FIELDS,
    TASK_RUNS_ATTRIBUTE,
    listed_attribute,
    size_attribute,
)
from apps.runs.services.control import RerunVersion

AUDIT_FIELDS = ["created_date", "modified_date", "created_by_email", "modified_by_email"]


class TaskRunAttemptSerializer(AttributeModelSerializer):
    # One attempt of a task run (no docstring: it would become the schema's description).
    class Meta:
        model = TaskRunAttempt
        fields = ["number", "status", "started_at", "ended_at", "error", "idempotency_key"]


class TaskRunSerializer(AttributeModelSerializer):
    class Meta:
        model = TaskRun
        fields = [
            "task_operation_index",
            "status",
            "start_time",
            "task_prep_prompt",
            "task_prep_answer",
            "end_time",
            "id",
            "flow_run",
            "result",
            "error",
            "attempt",
            "omitted_fields",
            "approved_step",
            "copied_from",
            "attempts",
            "attempts_total",
        ]

    omitted_fields = serializers.SerializerMethodField(
        help_text="The fields left out (null) because they are too large for a list; reading the run shows them."
    )
    copied_from = serializers.UUIDField(
        source="copied_from_id",
        allow_null=True,
        help_text="In a rerun from a later step: the task run whose preparation and result this step holds; it was "
        "not run again. Null for a step that ran in this run.",
    )
    # Loaded by apps.runs.selectors.task_runs_with_attempts().
    attempts = TaskRunAttemptSerializer(
        many=True,
        source=ATTEMPTS_ATTRIBUTE,
        help_text="The step's latest attempts, newest first: each claim by a worker until what ended it (completed, "
        "failed, retried after a transient error, stopped for approval, cancelled, abandoned when its worker was "
        "lost), with the idempotency key its calls carried. At most NEENA_LIST_TASK_RUN_ATTEMPTS_LIMIT (5) in the "
        "run lists, NEENA_DETAIL_TASK_RUN_ATTEMPTS_LIMIT (100) when one run is read.",
    )
    attempts_total = serializers.IntegerField(help_text="How many attempts the step has had (attempts may show fewer).")

    def get_omitted_fields(self, task_run: Any) -> list[str]:
        return []


class ListedTaskRunSerializer(TaskRunSerializer):
    """A task run in a list of runs: its large fields as ``listed_task_runs_prefetch`` bounded them."""

    task_prep_prompt = serializers.JSONField(source=listed_attribute("task_prep_prompt"))
    task_prep_answer = serializers.JSONField(source=listed_attribute("task_prep_answer"))
    result = serializers.JSONField(source=listed_attribute("result"), allow_null=True)
    approved_step = serializers.JSONField(source=listed_attribute("approved_step"), allow_null=True)

    class Meta(TaskRunSerializer.Meta):
        pass

    def get_omitted_fields(self, task_run: Any) -> list[str]:
        cap = settings.NEENA_LIST_TASK_RUN_FIELD_CHARS
        return [name for name in LARGE_TASK_RUN_FIELDS if (getattr(task_run, size_attribute(name)) or 0) > cap]


class FlowRunPreviewSerializer(AttributeModelSerializer):
    """A run without its task runs, for light lists."""

    flow_version = serializers.IntegerField(
        source="flow_version.number", help_text="The number of the flow version the run executes."
    )

    class Meta:
        model = FlowRun
        fields = [
            "flow",
            "flow_version",
            "flow_request",
            "status",
            "approval_status",
            "triggered_time",
            "end_time",
            "triggered_by",
            "id",
            "organization",
            "approved_by",
            "approved_at",
            "approval_comment",
            "status_reason",
            "rerun_of",
            "rerun_from_index",
            *AUDIT_FIELDS,
        ]


class FlowRunSerializer(FlowRunPreviewSerializer):
    # The task runs and their total loaded by flow_run_list_with_task_runs_for_user(). No docstring here:
    # drf-spectacular would make it the description of the FlowRun schema.
    task_runs = TaskRunSerializer(many=True, source=TASK_RUNS_ATTRIBUTE)
    task_runs_total = serializers.IntegerField(help_text="How many task runs (steps) the run has.")
    task_runs_truncated = serializers.SerializerMethodField(
        help_text="True when task_runs holds only some of them (see task_runs_total)."
    )

    class Meta(FlowRunPreviewSerializer.Meta):
        fields = [*FlowRunPreviewSerializer.Meta.fields, "task_runs", "task_runs_total", "task_runs_truncated"]

    def get_task_runs_truncated(self, flow_run: Any) -> bool:
        return len(getattr(flow_run, TASK_RUNS_ATTRIBUTE)) < flow_run.task_runs_total


class ListedFlowRunSerializer(FlowRunSerializer):
    # A run in flow_runs/all and all_for_flow_id: at most NEENA_LIST_TASK_RUNS_LIMIT task runs, their large fields
    # bounded (listed_task_runs_prefetch()). No docstring: it would become the schema's description.
    task_runs = ListedTaskRunSerializer(many=True, source=TASK_RUNS_ATTRIBUTE)

    class Meta(FlowRunSerializer.Meta):
        pass


class FlowResultSerializer(AttributeModelSerializer):
    flow_run_id = serializers.UUIDField()
    organization_id = serializers.UUIDField()

    class Meta:
        model = FlowResult
        fields = [
            "body",
            "trigger_run_id",
            "integration_entity_id",
            "integration_short_name",
            "flow_run_id",
            "organization_id",
            "id",
            *AUDIT_FIELDS,
        ]


class FlowRunWithResultSerializer(FlowRunSerializer):
    result = FlowResultSerializer(allow_null=True, help_text="The run's latest flow result; null when it has none.")

    class Meta(FlowRunSerializer.Meta):
        fields = [*FlowRunSerializer.Meta.fields, "result"]


class FlowIdQuerySerializer(serializers.Serializer):
    flow_id = serializers.UUIDField()


class FlowResultQuerySerializer(serializers.Serializer):
    integration_entity_id = serializers.CharField(min_length=1, max_length=255)
    integration_short_name = serializers.CharField(min_length=1, max_length=50)


class TaskRunsPageQuerySerializer(serializers.Serializer):
    task_runs_skip = serializers.IntegerField(
        min_value=0, max_value=MAX_SKIP, default=0, help_text="Leave out the task runs of the first this many steps."
    )
    task_runs_limit = serializers.IntegerField(
        min_value=1,
        required=False,
        help_text="At most this many task runs; default and maximum NEENA_DETAIL_TASK_RUNS_LIMIT (1000).",
    )

    def validate_task_runs_limit(self, value: int) -> int:
        maximum = settings.NEENA_DETAIL_TASK_RUNS_LIMIT
        if value > maximum:
            raise serializers.ValidationError(
                f"Ensure this value is less than or equal to {maximum}.", code="max_value"
            )
        return value


class FlowRunIdQuerySerializer(serializers.Serializer):
    flow_run_id = serializers.UUIDField()


class RerunQuerySerializer(FlowRunIdQuerySerializer):
    version = serializers.ChoiceField(
        choices=RerunVersion.choices,
        default=RerunVersion.PINNED,
        help_text="pinned (the default): the run's own flow version; latest: the flow's latest version.",
    )


class RerunFromQuerySerializer(FlowRunIdQuerySerializer):
    task_operation_index = serializers.IntegerField(
        min_value=0,
        max_value=MAX_TASK_OPERATIONS - 1,
        help_text="The step to run from; the steps not downstream are copied.",
    )


class RerunFromInputSerializer(StrictInputSerializer):
    parameters = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        required=False,
        default=dict,
        validators=[reject_nul_characters],
        help_text="Values for parameters of the chosen step, by name, each of its parameter's type; its preparation "
        "takes them first.",
    )


class RetryFailedQuerySerializer(serializers.Serializer):
    flow_id = serializers.UUIDField(required=False, help_text="The flow (here or in the body).")
    since = serializers.DateTimeField(
        required=False, help_text="Only runs that failed at or after this time (ISO 8601; a date means its midnight)."
    )


class RetryFailedInputSerializer(StrictInputSerializer):
    flow_id = serializers.UUIDField(required=False, help_text="The flow (here or in the query).")
    since = serializers.DateTimeField(
        required=False, help_text="Only runs that failed at or after this time (ISO 8601; a date means its midnight)."
    )


class RetryReportSerializer(serializers.Serializer):
    queued = serializers.IntegerField(help_text="How many failed runs were queued again.")
    skipped = serializers.IntegerField(
        help_text="Failed runs found that were not retried: retried meanwhile by another call, or refused (a task "
        "gone from the catalogue, say)."
    )
    more = serializers.BooleanField(
        help_text="True when more failed runs than NEENA_RETRY_FAILED_LIMIT were found: call again for the rest."
    )


class ExecuteQuerySerializer(serializers.Serializer):
    """``flows/execute``'s query. The original web frontend calls ``?id=<flow id>`` with no request (its backend's
    execute took only the flow), so ``id`` is another name of ``flow_id`` and ``flow_request_id`` may be left out."""

    flow_id = serializers.UUIDField(required=False, help_text="The flow to run. Required unless given as id.")
    id = serializers.UUIDField(
        required=False,
        help_text="Another name for flow_id (the original web frontend's). Giving both with different values is a "
        "422 (conflict).",
    )
    flow_request_id = serializers.UUIDField(
        required=False,
        help_text="The flow request to run the flow for. Left out: the newest (by created_date) not-deleted flow "
        "request of the flow's organization linked to the flow (its flow field), as flows/generate links it; a 422 "
        "(no_flow_request) when there is none.",
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        """``id`` becomes ``flow_id``; one of the two is required, and both must name the same flow."""
        alias = data.pop("id", None)
        if alias is not None:
            if data.get("flow_id", alias) != alias:
                raise serializers.ValidationError(
                    {"id": ["Give the flow once: as flow_id or as id, not both with different values."]},
                    code="conflict",
                )
            data["flow_id"] = alias
        if "flow_id" not in data:
            raise serializers.ValidationError({"flow_id": ["This field is required."]}, code="required")
        data.setdefault("flow_request_id", None)
        return data


class FlowRunCreateSerializer(StrictInputSerializer):
    """The documented create body. The engine owns a run's status: a client's pending (or null) is ignored, but a
    status saying the run has ended, or an approval already decided, is refused rather than silently dropped."""

    ignored_fields = FlowRunWithResultSerializer.Meta.fields

    flow = serializers.UUIDField()
    flow_request = serializers.UUIDField()
    status = serializers.ChoiceField(
        choices=FlowRun.Status.choices,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="Ignored: a run starts pending. A terminal status (completed, failed, cancelled) is a 422.",
    )
    approval_status = serializers.ChoiceField(
        choices=FlowRun.ApprovalStatus.choices,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="Ignored. A decided one (approved, rejected) is a 422.",
    )
    triggered_time = serializers.CharField(required=False, allow_null=True, allow_blank=True, help_text="Ignored.")
    end_time = serializers.CharField(required=False, allow_null=True, allow_blank=True, help_text="Ignored.")
    triggered_by = serializers.CharField(required=False, allow_null=True, allow_blank=True, help_text="Ignored.")

    def validate_status(self, value: str | None) -> str | None:
        if value in FlowRun.TERMINAL:
            raise serializers.ValidationError(
                f"A flow run starts pending; only the engine ends it, so '{value}' cannot be given.",
                code="status_not_allowed",
            )
        return value

    def validate_approval_status(self, value: str | None) -> str | None:
        if value in (FlowRun.ApprovalStatus.APPROVED, FlowRun.ApprovalStatus.REJECTED):
            raise serializers.ValidationError(
                f"A new flow run has no decision; approve or reject it once it waits, not '{value}' at creation.",
                code="status_not_allowed",
            )
        return value


class ApproveInputSerializer(StrictInputSerializer):
    parameters = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        required=False,
        default=dict,
        validators=[reject_nul_characters],
        help_text="New values for parameters of the steps waiting for approval, by name; audited.",
    )
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class DecisionInputSerializer(StrictInputSerializer):
    comment = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=5000, help_text="The reason, kept with the run."
    )
