"""Run, task-run and flow-result shapes of the documented API."""

from rest_framework import serializers

from apps.runs.models import FlowResult, FlowRun, TaskRun

AUDIT_FIELDS = ["created_date", "modified_date", "created_by_email", "modified_by_email"]


class TaskRunSerializer(serializers.ModelSerializer):
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
        ]


class FlowRunPreviewSerializer(serializers.ModelSerializer):
    """A run without its task runs, for light lists."""

    class Meta:
        model = FlowRun
        fields = [
            "flow",
            "flow_request",
            "status",
            "approval_status",
            "triggered_time",
            "end_time",
            "triggered_by",
            "id",
            "organization",
            *AUDIT_FIELDS,
        ]


class FlowRunSerializer(FlowRunPreviewSerializer):
    task_runs = TaskRunSerializer(many=True)

    class Meta(FlowRunPreviewSerializer.Meta):
        fields = [*FlowRunPreviewSerializer.Meta.fields, "task_runs"]


class FlowResultSerializer(serializers.ModelSerializer):
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
