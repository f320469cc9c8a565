"""Webhook trigger operations and their trigger runs in the admin.

An operation is added and changed here as through the API: the API's fields, parsed by its input serializers and
checked by ``trigger_operation_check`` before anything is saved; ``trigger_operation_create`` then makes the signing
secret (or takes the provider's), stores it encrypted, and the page after adding shows it once, as the API's create
answer does, without putting it in a message, the session or a cookie. No page shows a stored secret. Trigger runs are
records written by deliveries and workers: read-only.
"""

from typing import Any, cast
from weakref import WeakKeyDictionary

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from apps.accounts.admin import OrganizationScopedAdmin
from apps.accounts.models import Organization, User
from apps.accounts.selectors import organization_for_write, organization_list_for_user
from apps.core.admin import ReadOnlyAdmin, SecretInput, ServiceAdmin, ServiceForm
from apps.core.exceptions import ApplicationError
from apps.integrations.models import WebhookTriggerDefinition
from apps.integrations.selectors import webhook_trigger_definition_list
from apps.webhooks.models import TriggerRun, WebhookTriggerOperation
from apps.webhooks.serializers import TriggerOperationInputSerializer, TriggerOperationUpdateInputSerializer
from apps.webhooks.services import operations

AUDIT = ["id", "created_date", "modified_date", "created_by_email", "modified_by_email"]
LEAVE_STATUS = ""
Status = WebhookTriggerOperation.Status

# The secret made by an add, from save_model to the page that shows it once; gone with the request.
_new_secrets: "WeakKeyDictionary[HttpRequest, str]" = WeakKeyDictionary()


class TriggerOperationForm(ServiceForm):
    """The API's create body (name, definition, template, status, organization, optional secret) when adding; its
    update body (name, template, status, optional secret) when changing."""

    organization = forms.ModelChoiceField(
        queryset=Organization.objects.none(), help_text="One of the organizations you are a member of."
    )
    webhook_trigger_definition = forms.ModelChoiceField(queryset=webhook_trigger_definition_list())
    signing_secret = forms.CharField(
        required=False,
        widget=SecretInput(),
        help_text="Only for providers that issue their own (Slack, Zendesk). Left empty, Neena makes one when the "
        "operation is added, and keeps the current one when it is changed.",
    )

    class Meta:
        model = WebhookTriggerOperation
        fields = ["name", "template_body", "status"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "organization" in self.fields:
            field = cast(forms.ModelChoiceField, self.fields["organization"])
            field.queryset = organization_list_for_user(user=self.user).order_by("name")
        if not self.instance._state.adding and "status" in self.fields:
            # As the API's update: no status leaves it as it is, except that a failed operation becomes active.
            status = cast(forms.ChoiceField, self.fields["status"])
            status.choices = [(LEAVE_STATUS, "(leave as it is; a failed operation becomes active)"), *Status.choices]
            status.required = False
            self.initial["status"] = LEAVE_STATUS

    def check(self, cleaned: dict[str, Any]) -> None:
        secret = {"signing_secret": cleaned["signing_secret"]} if cleaned.get("signing_secret") else {}
        definition: WebhookTriggerDefinition
        if self.instance._state.adding:
            definition = cleaned["webhook_trigger_definition"]
            body = {
                "name": cleaned["name"],
                "webhook_trigger_definition": str(definition.id),
                "template_body": cleaned["template_body"],
                "status": cleaned["status"],
                "organization": str(cleaned["organization"].id),
                **secret,
            }
            arguments = dict(self.parsed(TriggerOperationInputSerializer, body).validated_data)
            organization_for_write(user=self.user, organization_id=arguments["organization"])
        else:
            definition = self.instance.webhook_trigger_definition
            body = {
                "id": str(self.instance.pk),
                "name": cleaned["name"],
                "template_body": cleaned["template_body"],
                **({"status": cleaned["status"]} if cleaned.get("status") else {}),
                **secret,
            }
            arguments = dict(self.parsed(TriggerOperationUpdateInputSerializer, body).validated_data)
            arguments.pop("id")
        operations.trigger_operation_check(
            definition=definition,
            template_body=arguments["template_body"],
            signing_secret=arguments.get("signing_secret"),
        )
        self.arguments = arguments

    def save_through_service(self, *, instance: Model | None) -> Model:
        if instance is None:
            operation, self.new_secret = operations.trigger_operation_create(user=self.user, **self.arguments)
            return operation
        return operations.trigger_operation_update(
            user=self.user, operation=cast(WebhookTriggerOperation, instance), **self.arguments
        )


@admin.register(WebhookTriggerOperation)
class WebhookTriggerOperationAdmin(OrganizationScopedAdmin, ServiceAdmin):
    """Operations, added, changed and deleted through the operation services; the secret is never shown once stored."""

    form = TriggerOperationForm
    list_display = [
        "name",
        "webhook_trigger_definition",
        "status",
        "consecutive_failures",
        "organization",
        "created_date",
    ]
    list_filter = ["status", "organization"]
    list_select_related = ["webhook_trigger_definition", "organization"]
    search_fields = ["name", "template_body"]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        record = ["consecutive_failures", "last_failure_reason", *AUDIT]
        if obj is None:
            main = ["name", "organization", "webhook_trigger_definition", "template_body", "status", "signing_secret"]
        else:
            main = ["name", "organization", "webhook_trigger_definition", "inbound_url", "template_body", "status"]
            main += ["signing_secret"] if self.has_change_permission(request, obj) else []
        return [(None, {"fields": main}), *([("Record", {"fields": record})] if obj is not None else [])]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """The organization and the definition are chosen when the operation is added, shown afterwards."""
        if obj is None:
            return []
        return [
            "organization",
            "webhook_trigger_definition",
            "inbound_url",
            "consecutive_failures",
            "last_failure_reason",
            *AUDIT,
        ]

    @admin.display(description="inbound URL")
    def inbound_url(self, operation: WebhookTriggerOperation) -> str:
        return operations.trigger_operation_inbound_url(operation_id=operation.id)

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            _new_secrets[request] = form.new_secret

    def response_add(self, request: HttpRequest, obj: Model, post_url_continue: str | None = None) -> HttpResponse:
        """The page after adding: the signing secret, this once, with the inbound URL (no redirect: a message would
        keep the secret in the session or a cookie until shown)."""
        secret = _new_secrets.pop(request, None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        operation = cast(WebhookTriggerOperation, obj)
        context = {
            **self.admin_site.each_context(request),
            "title": "Signing secret",
            "subtitle": str(operation),
            "opts": self.opts,
            "operation": operation,
            "signing_secret": secret,
            "inbound_url": operations.trigger_operation_inbound_url(operation_id=operation.id),
            "change_url": reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                args=[operation.pk],
                current_app=self.admin_site.name,
            ),
        }
        # The admin's views are never cached (Cache-Control: no-store ...), this page with them.
        return TemplateResponse(request, "admin/webhooks/webhooktriggeroperation/signing_secret.html", context)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """The operation's trigger runs go with it, as through the API (``trigger_operation_delete``). They are
        records nobody may delete one by one, so Django's check for the permission to delete each is left out."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, perms_needed - {str(TriggerRun._meta.verbose_name)}, protected

    def delete_model(self, request: HttpRequest, obj: WebhookTriggerOperation) -> None:
        self.delete_queryset(request, WebhookTriggerOperation.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WebhookTriggerOperation]) -> None:
        for operation in queryset:
            try:
                operations.trigger_operation_delete(user=cast(User, request.user), operation=operation)
            except ApplicationError as error:  # the role check (admin): the others are still deleted
                self.message_user(request, f"{operation} was kept: {error.message}", messages.ERROR)


@admin.register(TriggerRun)
class TriggerRunAdmin(OrganizationScopedAdmin, ReadOnlyAdmin):
    """One delivered event each: records, read-only."""

    list_display = ["delivery_id", "operation", "status", "created_date", "flow_run"]
    list_filter = ["status", "organization"]
    search_fields = ["delivery_id", "reason"]
    list_select_related = ["operation", "flow_run"]
    fields = [
        "delivery_id",
        "operation",
        "status",
        "reason",
        "event_fields",
        "payload",
        "flow_request",
        "flow_run",
        "organization",
        *AUDIT,
    ]
