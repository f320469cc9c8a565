"""Flow and flow-request shapes: input serializers parse, output serializers render the documented fields."""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.serializers import StrictInputSerializer
from apps.core.validators import reject_nul_characters
from apps.flows.models import NAME_MAX_LENGTH, Dependency, Flow, FlowRequest, TaskOperation
from apps.flows.services import DependencyDraft, TaskOperationDraft

# A guard against accidental giants; real flows have tens of steps.
MAX_TASK_OPERATIONS = 1000
MAX_DEPENDENCIES = 10_000

AUDIT_FIELDS = ["created_date", "modified_date", "created_by_email", "modified_by_email"]
# The output shapes (what reading answers); an input accepts and ignores those of them it does not take.
FLOW_REQUEST_FIELDS = [
    "request_metadata",
    "request_instructions",
    "request_name",
    "flow",
    "organization",
    "id",
    *AUDIT_FIELDS,
]
TASK_OPERATION_FIELDS = [
    "name",
    "task_definition",
    "instruction",
    "x",
    "y",
    "index",
    "sorted_index",
    "parameters",
    "id",
    "flow",
    *AUDIT_FIELDS,
]
DEPENDENCY_FIELDS = ["instruction", "source_task_operation", "target_task_operation", "id", "flow", *AUDIT_FIELDS]
FLOW_FIELDS = [
    "name",
    "task_operations",
    "dependencies",
    "id",
    "organization",
    "created_by_human",
    "planner",
    "planning_notes",
    *AUDIT_FIELDS,
]
# What the original web frontend sends back with a flow besides its read shape, accepted and ignored as the original
# API ignored them: its canvas's node ids, and the original schema's flags (``created_by_human`` is the server's to
# say, from who made the flow).
FRONTEND_TASK_OPERATION_FIELDS = ["drawflow_node_id"]
FRONTEND_DEPENDENCY_FIELDS = ["source_drawflow_node_id", "target_drawflow_node_id"]
FRONTEND_FLOW_FIELDS = ["sorted", "modified_by_human"]


@extend_schema_field(
    {
        "oneOf": [
            {"type": "array", "items": {"type": "object", "additionalProperties": True}},
            {"type": "object", "additionalProperties": True},
        ],
        "description": "Context for the request: an array of objects (merged in order) or one object.",
    }
)
class RequestMetadataField(serializers.JSONField):
    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        if isinstance(value, dict) or (isinstance(value, list) and all(isinstance(item, dict) for item in value)):
            reject_nul_characters(value)
            return value
        raise serializers.ValidationError("Expected an object or an array of objects.", code="invalid")


# --- Flow requests -----------------------------------------------------------------------------------------------


class FlowRequestInputSerializer(StrictInputSerializer):
    ignored_fields = FLOW_REQUEST_FIELDS

    request_instructions = serializers.CharField(max_length=20_000)
    request_metadata = RequestMetadataField(required=False, allow_null=True, default=None)
    request_name = serializers.CharField(
        max_length=NAME_MAX_LENGTH, required=False, allow_blank=True, allow_null=True, default=""
    )
    flow = serializers.UUIDField(required=False, allow_null=True, default=None)
    organization = serializers.UUIDField(required=False, allow_null=True, default=None)

    def validate_request_name(self, value: str | None) -> str:
        return value or ""


class FlowRequestUpdateInputSerializer(FlowRequestInputSerializer):
    id = serializers.UUIDField()


class FlowRequestSerializer(serializers.ModelSerializer):
    request_metadata = RequestMetadataField()

    class Meta:
        model = FlowRequest
        fields = FLOW_REQUEST_FIELDS


# --- Flows -------------------------------------------------------------------------------------------------------


def instructions_alias() -> serializers.CharField:
    """The original web frontend's ``instructions`` (what its drawers edit), taken as ``instruction`` when that is
    blank; the original API dropped it, losing what people typed."""
    return serializers.CharField(
        allow_blank=True,
        allow_null=True,
        required=False,
        default=None,
        max_length=20_000,
        write_only=True,
        help_text="Another name for instruction, used when instruction is blank (the original web frontend's).",
    )


def take_instructions_alias(data: dict[str, Any]) -> dict[str, Any]:
    alias = data.pop("instructions", None)
    if alias and not data.get("instruction"):
        data["instruction"] = alias
    return data


class TaskOperationInputSerializer(StrictInputSerializer):
    ignored_fields = [*TASK_OPERATION_FIELDS, *FRONTEND_TASK_OPERATION_FIELDS]

    name = serializers.CharField(max_length=255)
    task_definition = serializers.UUIDField()
    instruction = serializers.CharField(allow_blank=True, required=False, default="", max_length=20_000)
    x = serializers.FloatField(required=False, allow_null=True, default=None)
    y = serializers.FloatField(required=False, allow_null=True, default=None)
    index = serializers.IntegerField(min_value=0, max_value=MAX_TASK_OPERATIONS - 1)
    parameters = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        required=False,
        default=dict,
        validators=[reject_nul_characters],
        help_text="Explicit bindings by parameter name: a literal, or a template such as "
        "'{{ steps.0.result.ticket_id }}' or '{{ request.metadata.customer_email }}'.",
    )
    instructions = instructions_alias()

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        return take_instructions_alias(data)


class DependencyInputSerializer(StrictInputSerializer):
    ignored_fields = [*DEPENDENCY_FIELDS, *FRONTEND_DEPENDENCY_FIELDS]

    source_task_operation = serializers.IntegerField(min_value=0, max_value=MAX_TASK_OPERATIONS - 1)
    target_task_operation = serializers.IntegerField(min_value=0, max_value=MAX_TASK_OPERATIONS - 1)
    instruction = serializers.CharField(allow_blank=True, required=False, default="", max_length=20_000)
    instructions = instructions_alias()

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        return take_instructions_alias(data)


class FlowInputSerializer(StrictInputSerializer):
    ignored_fields = [*FLOW_FIELDS, *FRONTEND_FLOW_FIELDS]

    name = serializers.CharField(max_length=NAME_MAX_LENGTH)
    task_operations = serializers.ListField(
        child=TaskOperationInputSerializer(), min_length=1, max_length=MAX_TASK_OPERATIONS
    )
    dependencies = serializers.ListField(
        child=DependencyInputSerializer(), required=False, default=list, max_length=MAX_DEPENDENCIES
    )
    organization = serializers.UUIDField(required=False, allow_null=True, default=None)

    def to_service_kwargs(self) -> dict[str, Any]:
        data = self.validated_data
        return {
            "name": data["name"],
            "organization": data["organization"],
            "task_operations": [TaskOperationDraft(**operation) for operation in data["task_operations"]],
            "dependencies": [DependencyDraft(**dependency) for dependency in data["dependencies"]],
        }


class FlowUpdateInputSerializer(FlowInputSerializer):
    id = serializers.UUIDField()


class TaskOperationSerializer(serializers.ModelSerializer):
    class Meta:
        model = TaskOperation
        fields = TASK_OPERATION_FIELDS


class DependencySerializer(serializers.ModelSerializer):
    class Meta:
        model = Dependency
        fields = DEPENDENCY_FIELDS


class FlowSerializer(serializers.ModelSerializer):
    task_operations = TaskOperationSerializer(many=True)
    dependencies = DependencySerializer(many=True)
    planning_notes = serializers.ListField(child=serializers.CharField(), read_only=True)
    created_by_human = serializers.BooleanField(
        read_only=True, help_text="True for a flow a person made, false for one a planner generated (see planner)."
    )

    class Meta:
        model = Flow
        fields = FLOW_FIELDS


class FlowRequestIdQuerySerializer(serializers.Serializer):
    flow_request_id = serializers.UUIDField()
