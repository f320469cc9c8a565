"""Credentials in the admin: added through ``credential_upsert``, as by the API (the secret encrypted, stored as the
staff user's own credential, replacing theirs for the integration), deleted through ``credential_delete``; a stored
credential shows its status and metadata only, never its secret.

Deleting is an action of the list, not Django's delete page: ``credential_delete`` first asks the provider to revoke
an OAuth2 token, a network call, and Django runs its delete page inside a database transaction; actions run outside
one.
"""

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from apps.accounts.admin import OrganizationScopedAdmin
from apps.accounts.models import Organization, User
from apps.accounts.selectors import organization_for_write, organization_list_for_user
from apps.core.admin import CheckedJSONField, SecretInput, SecretTextarea, ServiceAdmin, ServiceForm
from apps.core.exceptions import ApplicationError
from apps.credentials.models import IntegrationCredential
from apps.credentials.serializers import CredentialInputSerializer
from apps.credentials.services.credentials import (
    DIRECT_SECRET_AUTH_TYPES,
    credential_check,
    credential_delete,
    credential_upsert,
)
from apps.integrations.models import Integration
from apps.integrations.selectors import integration_list

CREDENTIAL_FIELDS = (
    "integration",
    "owner",
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
)
DELETE_PERMISSION = "credentials.delete_integrationcredential"


class CredentialForm(ServiceForm):
    """The API's create body: the organization, the integration (one that takes a secret handed over directly), the
    API key and/or other secret fields, the config. The credential is the staff user's own."""

    organization = forms.ModelChoiceField(
        queryset=Organization.objects.none(), help_text="One of the organizations you are a member of."
    )
    integration = forms.ModelChoiceField(
        queryset=integration_list().filter(auth_type__in=DIRECT_SECRET_AUTH_TYPES),
        help_text="OAuth2 integrations connect through the API's authorize URL instead.",
    )
    api_key = forms.CharField(required=False, max_length=4096, widget=SecretInput())
    credentials = CheckedJSONField(
        required=False,
        widget=SecretTextarea(attrs={"rows": 4, "cols": 60}),
        help_text='Secret fields other than the API key, e.g. {"token": "..."}. Stored encrypted; never shown.',
    )
    config = CheckedJSONField(
        required=False,
        initial=dict,
        help_text='Settings that are not secret, e.g. {"subdomain": "acme", "email": "agent@acme.com"}.',
    )

    class Meta:
        model = IntegrationCredential
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "organization" in self.fields:
            field = cast(forms.ModelChoiceField, self.fields["organization"])
            field.queryset = organization_list_for_user(user=self.user).order_by("name")

    def check(self, cleaned: dict[str, Any]) -> None:
        integration = cast(Integration, cleaned["integration"])
        body = {
            "integration": str(integration.id),
            "api_key": cleaned.get("api_key") or None,
            "credentials": cleaned.get("credentials"),
            "config": cleaned.get("config"),
            "organization": str(cast(Organization, cleaned["organization"]).id),
        }
        arguments = dict(self.parsed(CredentialInputSerializer, body).validated_data)
        organization_for_write(user=self.user, organization_id=arguments["organization"])
        credential_check(
            integration=arguments["integration"],
            integration_short_name=arguments["integration_short_name"],
            api_key=arguments["api_key"],
            credentials=arguments["credentials"],
            config=arguments["config"],
        )
        self.arguments = arguments

    def save_through_service(self, *, instance: Model | None) -> Model:
        return credential_upsert(user=self.user, **self.arguments)


@admin.register(IntegrationCredential)
class IntegrationCredentialAdmin(OrganizationScopedAdmin, ServiceAdmin):
    """Credentials: added (as the staff user's own) and deleted through the credential services; never changed here
    (adding again replaces the secret), never shown."""

    form = CredentialForm
    list_display = ["integration", "owner", "organization", "status", "modified_date"]
    list_filter = ["status", "integration", "organization"]
    list_select_related = ["integration", "owner", "organization"]
    search_fields = ["owner__email", "integration__name"]
    actions = ["delete_selected_credentials"]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return [(None, {"fields": ["organization", "integration", "api_key", "credentials", "config"]})]
        return [(None, {"fields": list(CREDENTIAL_FIELDS)})]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if obj is None else list(CREDENTIAL_FIELDS)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Not through Django's delete page or its "delete selected" action: see ``delete_selected_credentials``."""
        return False

    def has_remove_permission(self, request: HttpRequest) -> bool:
        """May delete credentials (the ``permissions=["remove"]`` of the action asks this)."""
        return request.user.has_perm(DELETE_PERMISSION)

    @admin.action(permissions=["remove"], description="Delete selected credentials (revoking OAuth2 tokens)")
    def delete_selected_credentials(self, request: HttpRequest, queryset: QuerySet[IntegrationCredential]) -> None:
        count = 0
        for credential in queryset.select_related("integration"):
            try:
                credential_delete(user=cast(User, request.user), credential=credential)
            except ApplicationError as error:  # the role check: the others are still deleted
                self.message_user(request, f"{credential} was kept: {error.message}", messages.ERROR)
                continue
            count += 1
        self.message_user(request, f"Deleted {count} credential{'' if count == 1 else 's'}.", messages.SUCCESS)
