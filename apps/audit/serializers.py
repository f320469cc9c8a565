"""The audit event as the API shows it."""

from rest_framework import serializers

from apps.audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.UUIDField(source="actor_id", allow_null=True, help_text="The acting user; null for the system.")
    before = serializers.JSONField(allow_null=True, help_text="The object's recorded fields before; null if new.")
    after = serializers.JSONField(allow_null=True, help_text="The object's recorded fields after; null if removed.")

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "organization",
            "actor",
            "actor_email",
            "action",
            "object_type",
            "object_id",
            "before",
            "after",
            "created_date",
        ]
        read_only_fields = fields
