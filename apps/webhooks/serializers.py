"""Webhook trigger operation and trigger run shapes of the documented API (input and output apart)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.serializers import StrictInputSerializer
from apps.webhooks.models import TriggerRun, WebhookTriggerOperation
from apps.webhooks.services.operations import trigger_operation_inbound_url

AUDIT_FIELDS = ["created_date", "modified_date", "created_by_email", "modified_by_email"]
# The output shape; the create and update bodies accept and ignore those of its fields they do not take.
TRIGGER_OPERATION_FIELDS = [
    "name",
    "webhook_trigger_definition",
    "template_body",
    "status",
    "id",
    *AUDIT_FIELDS,
    "organization",
    "inbound_url",
    "consecutive_failures",
    "last_failure_reason",
]


class TriggerOperationInputSerializer(StrictInputSerializer):
    ignored_fields = TRIGGER_OPERATION_FIELDS

    name = serializers.CharField(max_length=255)
    webhook_trigger_definition = serializers.UUIDField()
    template_body = serializers.CharField(
        max_length=20_000, help_text="The flow request's instructions, with <{event_field}> placeholders."
    )
    status = serializers.ChoiceField(
        choices=WebhookTriggerOperation.Status.choices, default=WebhookTriggerOperation.Status.INACTIVE
    )
    organization = serializers.UUIDField(required=False, allow_null=True, default=None)
    signing_secret = serializers.CharField(
        required=False,
        min_length=16,
        max_length=512,
        write_only=True,
        help_text="Write-only: the provider's own signing secret (Slack, Zendesk issue theirs); else Neena makes one.",
    )


class TriggerOperationUpdateInputSerializer(StrictInputSerializer):
    ignored_fields = TRIGGER_OPERATION_FIELDS

    id = serializers.UUIDField()
    name = serializers.CharField(max_length=255)
    template_body = serializers.CharField(
        max_length=20_000, help_text="The flow request's instructions, with <{event_field}> placeholders."
    )
    status = serializers.ChoiceField(
        choices=WebhookTriggerOperation.Status.choices,
        required=False,
        help_text="Left as it is when omitted, except that a failed operation becomes active again.",
    )
    signing_secret = serializers.CharField(
        required=False,
        min_length=16,
        max_length=512,
        write_only=True,
        help_text="Write-only: the provider's own signing secret (Slack, Zendesk issue theirs); else Neena makes one.",
    )


class TriggerOperationSerializer(serializers.ModelSerializer):
    inbound_url = serializers.SerializerMethodField(
        help_text="Where the integration delivers events: POST, signed with the operation's secret."
    )

    class Meta:
        model = WebhookTriggerOperation
        fields = TRIGGER_OPERATION_FIELDS

    @extend_schema_field({"type": "string", "format": "uri"})
    def get_inbound_url(self, operation: WebhookTriggerOperation) -> str:
        return trigger_operation_inbound_url(operation_id=operation.id)


class TriggerOperationWithSecretSerializer(TriggerOperationSerializer):
    """The create and rotate answers: the only ones carrying the signing secret (give it as ``signing_secret`` in
    the serializer's context)."""

    signing_secret = serializers.SerializerMethodField(
        help_text="The secret deliveries are signed with (HMAC-SHA256). Shown only now: keep it."
    )

    class Meta(TriggerOperationSerializer.Meta):
        fields = [*TriggerOperationSerializer.Meta.fields, "signing_secret"]

    def get_signing_secret(self, operation: WebhookTriggerOperation) -> str:
        return str(self.context["signing_secret"])


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectField(serializers.JSONField):
    """A JSON object, described as one in the schema."""


class TriggerRunSerializer(serializers.ModelSerializer):
    event_fields = JSONObjectField(help_text="The event fields taken from the payload, coerced to their types.")
    payload = JSONObjectField(help_text="The delivered JSON, as verified.")

    class Meta:
        model = TriggerRun
        fields = [
            "id",
            "operation",
            "delivery_id",
            "status",
            "reason",
            "event_fields",
            "flow_request",
            "flow_run",
            *AUDIT_FIELDS,
            "organization",
            "payload",
        ]


class TriggerRunListQuerySerializer(serializers.Serializer):
    operation_id = serializers.UUIDField(required=False, help_text="Only this operation's trigger runs.")


class InboundDeliveryAcceptedSerializer(serializers.Serializer):
    """The inbound endpoint's 202: a new event, stored as a trigger run and queued."""

    trigger_run_id = serializers.UUIDField()


class InboundDeliveryAnswerSerializer(serializers.Serializer):
    """The inbound endpoint's 200: a delivery seen before (its run's id and ``duplicate``), or the answer to Slack's
    URL verification (``challenge`` alone)."""

    trigger_run_id = serializers.UUIDField(required=False, help_text="The run of the first delivery of this event.")
    duplicate = serializers.BooleanField(required=False, help_text="Always true: the event was received before.")
    challenge = serializers.CharField(required=False, help_text="Slack's url_verification challenge, echoed.")
