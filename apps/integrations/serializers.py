"""Catalogue shapes of the documented API (read-only)."""

from rest_framework import serializers

from apps.integrations.models import DIRECT_SECRET_AUTH_TYPES, Integration, TaskDefinition, WebhookTriggerDefinition


class IntegrationSerializer(serializers.ModelSerializer):
    # The original API's two flags, which its web frontend reads; auth_type says the same, in full.
    uses_api_key = serializers.SerializerMethodField(
        help_text="True when its credential is a secret you send (auth_type api_key or basic)."
    )
    uses_sso_key = serializers.SerializerMethodField(help_text="True when it connects through OAuth2.")

    class Meta:
        model = Integration
        fields = [
            "id",
            "name",
            "short_name",
            "class_name",
            "auth_type",
            "uses_api_key",
            "uses_sso_key",
            "description",
            "created_date",
            "modified_date",
        ]

    def get_uses_api_key(self, integration: Integration) -> bool:
        return integration.auth_type in DIRECT_SECRET_AUTH_TYPES

    def get_uses_sso_key(self, integration: Integration) -> bool:
        return integration.auth_type == Integration.AuthType.OAUTH2


class IntegrationSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Integration
        fields = ["class_name", "name", "short_name", "auth_type", "id", "created_date", "modified_date"]


class TaskParameterSerializer(serializers.Serializer):
    name = serializers.CharField()
    data_type = serializers.CharField(
        help_text="string, text, int, float, bool, email, url, list, dict, json, datetime"
    )
    position = serializers.IntegerField()
    doc_string = serializers.CharField()
    optional = serializers.BooleanField()
    default = serializers.JSONField(allow_null=True, help_text="Used when an optional parameter gets no value.")


class TaskDefinitionSerializer(serializers.ModelSerializer):
    parameters = TaskParameterSerializer(many=True)
    output_parameters = TaskParameterSerializer(many=True)
    belongs_to_integration = IntegrationSummarySerializer(source="integration")

    class Meta:
        model = TaskDefinition
        fields = [
            "task_name",
            "integration",
            "parameters",
            "input_type",
            "input_yml",
            "description",
            "python_method_name",
            "output_type",
            "output_yml",
            "output_parameters",
            "output_is_list",
            "side_effect",
            "id",
            "created_date",
            "modified_date",
            "created_by_email",
            "modified_by_email",
            "deleted_at",
            "belongs_to_integration",
        ]


class EventFieldSerializer(serializers.Serializer):
    name = serializers.CharField()
    json_path = serializers.CharField(help_text="Where the value is in the payload, e.g. $.ticket.id")
    data_type = serializers.CharField()
    doc_string = serializers.CharField()
    optional = serializers.BooleanField()


class WebhookTriggerDefinitionSerializer(serializers.ModelSerializer):
    event_fields = EventFieldSerializer(many=True)
    integration_short_name = serializers.CharField(source="integration.short_name")

    class Meta:
        model = WebhookTriggerDefinition
        fields = [
            "trigger_name",
            "integration",
            "integration_short_name",
            "python_method_name",
            "event_fields",
            "entity_id_field",
            "signature_scheme",
            "description",
            "id",
            "created_date",
            "modified_date",
            "created_by_email",
            "modified_by_email",
            "deleted_at",
        ]
