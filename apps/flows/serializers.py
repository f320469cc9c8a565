"""Flow and flow-request shapes: input serializers parse, output serializers render the documented fields."""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.serializers import StrictInputSerializer
from apps.core.validators import reject_nul_characters
from apps.flows.documents import FORMAT_VERSION, FlowDocument, StepDocument
from apps.flows.models import NAME_MAX_LENGTH, Dependency, Flow, FlowRequest, FlowVersion, TaskOperation
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
    "version",
    "latest_version",
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
    # The steps and edges are those of the version shown (Flow.shown_version): the latest, or the one asked for.
    task_operations = TaskOperationSerializer(many=True, source="shown_version.task_operations")
    dependencies = DependencySerializer(many=True, source="shown_version.dependencies")
    planning_notes = serializers.ListField(child=serializers.CharField(), read_only=True)
    created_by_human = serializers.BooleanField(
        read_only=True, help_text="True for a flow a person made, false for one a planner generated (see planner)."
    )
    version = serializers.IntegerField(
        source="shown_version.number",
        help_text="The number of the version shown: the latest unless ?version= names one.",
    )
    latest_version = serializers.IntegerField(
        source="latest_version.number", help_text="The number of the flow's newest version, which new runs execute."
    )

    class Meta:
        model = Flow
        fields = FLOW_FIELDS


class FlowReadQuerySerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="The flow's id.")
    version = serializers.IntegerField(
        required=False, min_value=1, max_value=2**31 - 1, help_text="A version number; the latest when left out."
    )


class FlowVersionsQuerySerializer(serializers.Serializer):
    flow_id = serializers.UUIDField()


class FlowDiffQuerySerializer(serializers.Serializer):
    flow_id = serializers.UUIDField()

    def get_fields(self) -> dict[str, serializers.Field]:
        # "from" is a Python keyword, so these two cannot be declared as class attributes.
        fields = super().get_fields()
        fields["from"] = serializers.IntegerField(min_value=1, max_value=2**31 - 1, help_text="The older version.")
        fields["to"] = serializers.IntegerField(min_value=1, max_value=2**31 - 1, help_text="The newer version.")
        return fields


class FlowVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = FlowVersion
        fields = ["number", "created_date", "created_by_email", "summary", "id", "flow"]


class ValueChangeSerializer(serializers.Serializer):
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class OperationContentSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    task_definition = serializers.UUIDField()
    name = serializers.CharField()
    instruction = serializers.CharField()
    x = serializers.FloatField(allow_null=True)
    y = serializers.FloatField(allow_null=True)
    parameters = serializers.DictField(child=serializers.JSONField(allow_null=True))


class ParameterDiffSerializer(serializers.Serializer):
    added = serializers.DictField(child=serializers.JSONField(allow_null=True))
    removed = serializers.DictField(child=serializers.JSONField(allow_null=True))
    changed = serializers.DictField(child=ValueChangeSerializer())


class OperationChangeSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    parameters = ParameterDiffSerializer()

    def get_fields(self) -> dict[str, serializers.Field]:
        # "fields" is the Serializer's own attribute, so this one cannot be declared as a class attribute.
        fields = super().get_fields()
        changed = serializers.DictField(
            child=ValueChangeSerializer(), help_text="task_definition, name, instruction, x, y: those that changed."
        )
        return {"index": fields["index"], "fields": changed, "parameters": fields["parameters"]}


class OperationsDiffSerializer(serializers.Serializer):
    added = OperationContentSerializer(many=True)
    removed = OperationContentSerializer(many=True)
    changed = OperationChangeSerializer(many=True)


class EdgeSerializer(serializers.Serializer):
    source_task_operation = serializers.IntegerField()
    target_task_operation = serializers.IntegerField()
    instruction = serializers.CharField()


class EdgeChangeSerializer(serializers.Serializer):
    source_task_operation = serializers.IntegerField()
    target_task_operation = serializers.IntegerField()
    instruction = ValueChangeSerializer()


class DependenciesDiffSerializer(serializers.Serializer):
    added = EdgeSerializer(many=True)
    removed = EdgeSerializer(many=True)
    changed = EdgeChangeSerializer(many=True)


class FlowDiffSerializer(serializers.Serializer):
    flow_id = serializers.UUIDField()
    from_version = serializers.IntegerField()
    to_version = serializers.IntegerField()
    task_operations = OperationsDiffSerializer(help_text="Steps matched by index.")
    dependencies = DependenciesDiffSerializer()


class FlowRequestIdQuerySerializer(serializers.Serializer):
    flow_request_id = serializers.UUIDField()


# --- Flows as code -------------------------------------------------------------------------------------------------


class TaskReferenceSerializer(StrictInputSerializer):
    integration = serializers.CharField(max_length=50, help_text="The integration's short_name, e.g. 'zendesk'.")
    task = serializers.CharField(max_length=200, help_text="The task's name, e.g. 'Add Zendesk Internal Note'.")


class StepDocumentSerializer(StrictInputSerializer):
    """A task operation of a document: the fields of ``TaskOperationInputSerializer`` with the task named (``task``)
    instead of ``task_definition``, and nothing else accepted."""

    index = serializers.IntegerField(min_value=0, max_value=MAX_TASK_OPERATIONS - 1)
    name = serializers.CharField(max_length=255)
    task = TaskReferenceSerializer()
    instruction = serializers.CharField(allow_blank=True, required=False, default="", max_length=20_000)
    x = serializers.FloatField(required=False, allow_null=True, default=None)
    y = serializers.FloatField(required=False, allow_null=True, default=None)
    parameters = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        required=False,
        default=dict,
        validators=[reject_nul_characters],
        help_text="Explicit bindings by parameter name, as in a flow's task operations.",
    )


class DependencyDocumentSerializer(StrictInputSerializer):
    source_task_operation = serializers.IntegerField(min_value=0, max_value=MAX_TASK_OPERATIONS - 1)
    target_task_operation = serializers.IntegerField(min_value=0, max_value=MAX_TASK_OPERATIONS - 1)
    instruction = serializers.CharField(allow_blank=True, required=False, default="", max_length=20_000)


class FlowDocumentSerializer(StrictInputSerializer):
    """The portable document (``apps.flows.documents``): what ``flows/export`` answers and ``flows/import`` reads."""

    neena_flow = serializers.IntegerField(
        min_value=1, max_value=2**31 - 1, help_text=f"The document's format: {FORMAT_VERSION}."
    )
    name = serializers.CharField(max_length=NAME_MAX_LENGTH)
    version = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        max_value=2**31 - 1,
        help_text="The version's number where it was exported; information only, an import makes its own.",
    )
    steps = serializers.ListField(child=StepDocumentSerializer(), min_length=1, max_length=MAX_TASK_OPERATIONS)
    dependencies = serializers.ListField(
        child=DependencyDocumentSerializer(), required=False, default=list, max_length=MAX_DEPENDENCIES
    )

    def validate_neena_flow(self, value: int) -> int:
        if value != FORMAT_VERSION:
            raise serializers.ValidationError(
                f"This is a format {value} document; this deployment reads format {FORMAT_VERSION}.",
                code="document_format",
            )
        return value


class FlowImportInputSerializer(FlowDocumentSerializer):
    organization = serializers.UUIDField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Where a new flow goes (default: your personal organization); with flow_id, its own or nothing.",
    )

    def to_document(self) -> FlowDocument:
        data = self.validated_data
        return FlowDocument(
            name=data["name"],
            version=data["version"],
            steps=[
                StepDocument(**{**step, "integration": step["task"]["integration"], "task": step["task"]["task"]})
                for step in data["steps"]
            ],
            dependencies=[DependencyDraft(**dependency) for dependency in data["dependencies"]],
        )


class FlowImportQuerySerializer(serializers.Serializer):
    flow_id = serializers.UUIDField(
        required=False, help_text="Import as the next version of this flow instead of as a new flow."
    )
