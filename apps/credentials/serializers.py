"""Credential shapes. Secrets go in, never out: the output lists which secret fields are stored, not their values."""

from typing import Any

from rest_framework import serializers

from apps.core.serializers import StrictInputSerializer
from apps.core.validators import reject_nul_characters
from apps.credentials.models import IntegrationCredential

# The output shape; the create body accepts and ignores those of its fields it does not take.
CREDENTIAL_FIELDS = [
    "id",
    "integration",
    "integration_short_name",
    "owner_email",
    "organization",
    "status",
    "status_reason",
    "secret_fields",
    "config",
    "expires_at",
    "created_date",
    "modified_date",
    "created_by_email",
    "modified_by_email",
]


class CredentialInputSerializer(StrictInputSerializer):
    ignored_fields = CREDENTIAL_FIELDS

    integration = serializers.UUIDField(required=False, allow_null=True, default=None)
    integration_short_name = serializers.CharField(required=False, allow_null=True, default=None, max_length=50)
    api_key = serializers.CharField(
        required=False, allow_null=True, default=None, max_length=4096, write_only=True, trim_whitespace=True
    )
    credentials = serializers.DictField(
        child=serializers.CharField(max_length=4096),
        required=False,
        default=None,
        allow_null=True,
        validators=[reject_nul_characters],
        help_text='Secret fields other than the API key, e.g. {"token": "..."}; stored encrypted.',
    )
    config = serializers.DictField(
        required=False,
        default=None,
        allow_null=True,
        validators=[reject_nul_characters],
        help_text='Settings that are not secret, e.g. {"subdomain": "acme", "email": "agent@acme.com"}.',
    )
    credential = serializers.CharField(
        required=False,
        allow_null=True,
        default=None,
        max_length=4096,
        write_only=True,
        trim_whitespace=True,
        help_text="The original API's name for the secret, as its clients send it "
        '({"integration": "<uuid>", "credential": "<secret>"}): the same as api_key.',
    )
    organization = serializers.UUIDField(required=False, allow_null=True, default=None)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        """``credential`` becomes ``api_key``; giving both, with different values, is ambiguous and refused."""
        credential = data.pop("credential", None)
        if credential:
            if data.get("api_key") and data["api_key"] != credential:
                raise serializers.ValidationError(
                    {"credential": ["Give the secret once: as api_key or as credential, not both."]}, code="conflict"
                )
            data["api_key"] = credential
        return data


class CredentialSerializer(serializers.ModelSerializer):
    integration_short_name = serializers.CharField(source="integration.short_name")
    owner_email = serializers.EmailField(source="owner.email")

    class Meta:
        model = IntegrationCredential
        fields = CREDENTIAL_FIELDS


class AuthorizeUrlQuerySerializer(serializers.Serializer):
    integration_short_name = serializers.CharField(min_length=1, max_length=50)
    organization = serializers.UUIDField(required=False, help_text="Where the credential goes; default: personal.")


class AuthorizeUrlSerializer(serializers.Serializer):
    authorize_url = serializers.URLField(help_text="Send the user here; the provider comes back with a code.")


class OAuth2CodeSerializer(StrictInputSerializer):
    integration_short_name = serializers.CharField(min_length=1, max_length=50)
    code = serializers.CharField(min_length=1, max_length=4096)
    state = serializers.CharField(min_length=1, max_length=4096)
