"""Run, task-run and flow-result shapes of the documented API."""

from rest_framework import serializers

from apps.core.serializers import AttributeModelSerializer
from apps.core.validators import reject_nul_characters
from apps.runs.models import FlowResult, FlowRun, TaskRun
from apps.runs.selectors import TASK_RUNS_ATTRIBUTE

AUDIT_FIELDS = ["created_date", "modified_date", "created_by_email", "modified_by_email"]


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
            "approved_step",
        ]


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
            *AUDIT_FIELDS,
        ]


class FlowRunSerializer(FlowRunPreviewSerializer):
    # The task runs loaded by flow_run_list_with_task_runs_for_user(). No docstring here: drf-spectacular would make
    # it the description of the FlowRun schema.
    task_runs = TaskRunSerializer(many=True, source=TASK_RUNS_ATTRIBUTE)

    class Meta(FlowRunPreviewSerializer.Meta):
        fields = [*FlowRunPreviewSerializer.Meta.fields, "task_runs"]


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


class FlowRunIdQuerySerializer(serializers.Serializer):
    flow_run_id = serializers.UUIDField()


class ExecuteQuerySerializer(serializers.Serializer):
    flow_id = serializers.UUIDField()
    flow_request_id = serializers.UUIDField()


class FlowRunCreateSerializer(serializers.Serializer):
    """The documented create body. Status fields a client sends are accepted and ignored: the engine owns them."""

    flow = serializers.UUIDField()
    flow_request = serializers.UUIDField()
    status = serializers.CharField(required=False, allow_null=True, allow_blank=True, help_text="Ignored.")
    approval_status = serializers.CharField(required=False, allow_null=True, allow_blank=True, help_text="Ignored.")
    triggered_time = serializers.CharField(required=False, allow_null=True, allow_blank=True, help_text="Ignored.")
    end_time = serializers.CharField(required=False, allow_null=True, allow_blank=True, help_text="Ignored.")
    triggered_by = serializers.CharField(required=False, allow_null=True, allow_blank=True, help_text="Ignored.")


class ApproveInputSerializer(serializers.Serializer):
    parameters = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        required=False,
        default=dict,
        validators=[reject_nul_characters],
        help_text="New values for parameters of the steps waiting for approval, by name; audited.",
    )
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class DecisionInputSerializer(serializers.Serializer):
    comment = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=5000, help_text="The reason, kept with the run."
    )
