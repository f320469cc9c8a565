"""Credentials in the admin: status and metadata only; the encrypted secret is never shown."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.credentials.models import IntegrationCredential

CREDENTIAL_FIELDS = ("integration", "owner", "organization", "status", "status_reason", "secret_fields", "config")


@admin.register(IntegrationCredential)
class IntegrationCredentialAdmin(admin.ModelAdmin):
    list_display = ["integration", "owner", "organization", "status", "modified_date"]
    list_filter = ["status", "integration", "organization"]
    search_fields = ["owner__email", "integration__name"]
    fields = CREDENTIAL_FIELDS
    readonly_fields = CREDENTIAL_FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
