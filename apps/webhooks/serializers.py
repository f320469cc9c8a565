"""Webhook trigger operation shapes of the documented API."""

from rest_framework import serializers

from apps.webhooks.models import WebhookTriggerOperation


class TriggerOperationInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    webhook_trigger_definition = serializers.UUIDField()
    template_body = serializers.CharField(
        max_length=20_000, help_text="The flow request's instructions, with <{event_field}> placeholders."
    )
    status = serializers.ChoiceField(
        choices=WebhookTriggerOperation.Status.choices, default=WebhookTriggerOperation.Status.INACTIVE
    )
    organization = serializers.UUIDField(required=False, allow_null=True, default=None)


class TriggerOperationSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookTriggerOperation
        fields = [
            "name",
            "webhook_trigger_definition",
            "template_body",
            "status",
            "id",
            "created_date",
            "modified_date",
            "created_by_email",
            "modified_by_email",
            "organization",
        ]
