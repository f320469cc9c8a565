"""Flows and flow requests in the admin.

A flow is added and changed here as through the API: its fields are the API's (name, organization, task_operations,
dependencies, the last two as the JSON the API takes), parsed by ``FlowInputSerializer`` and checked by
``flow_validate`` (the DAG's shape, live task definitions, parameter bindings) before anything is saved, so a cycle
or a bad binding is a form error; ``flow_create`` / ``flow_update`` then save it, ``flow_delete`` deletes it. Flow
requests are records here, read-only.
"""

import json
from typing import Any, cast

from django import forms
from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from apps.accounts.admin import OrganizationScopedAdmin
from apps.accounts.models import Organization, User
from apps.accounts.selectors import organization_for_write, organization_list_for_user
from apps.core.admin import CheckedJSONField, ReadOnlyAdmin, ServiceAdmin, ServiceForm
from apps.flows.models import Flow, FlowRequest
from apps.flows.serializers import FlowInputSerializer
from apps.flows.services import flow_create, flow_delete, flow_update, flow_validate

AUDIT = ["id", "created_date", "modified_date", "created_by_email", "modified_by_email"]


def _steps_as_input(flow: Flow) -> list[dict[str, Any]]:
    """The flow's steps in the shape the API (and this form) takes them."""
    return [
        {
            "index": operation.index,
            "name": operation.name,
            "task_definition": str(operation.task_definition_id),
            "instruction": operation.instruction,
            "x": operation.x,
            "y": operation.y,
            "parameters": operation.parameters,
        }
        for operation in flow.task_operations.order_by("index")
    ]


def _edges_as_input(flow: Flow) -> list[dict[str, Any]]:
    return [
        {
            "source_task_operation": dependency.source_task_operation,
            "target_task_operation": dependency.target_task_operation,
            "instruction": dependency.instruction,
        }
        for dependency in flow.dependencies.order_by("source_task_operation", "target_task_operation")
    ]


class FlowForm(ServiceForm):
    """The API's flow body as a form; the organization is chosen when the flow is added (one of the user's)."""

    organization = forms.ModelChoiceField(
        queryset=Organization.objects.none(), help_text="One of the organizations you are a member of."
    )
    task_operations = CheckedJSONField(
        help_text='The steps, as the API takes them: [{"index": 0, "name": "...", "task_definition": "<id>", '
        '"instruction": "...", "parameters": {...}}, ...]. Task definition ids are under Integrations.',
        widget=forms.Textarea(attrs={"rows": 16, "cols": 100, "class": "vLargeTextField"}),
    )
    dependencies = CheckedJSONField(
        required=False,
        initial=list,
        help_text='The edges, by step index: [{"source_task_operation": 0, "target_task_operation": 1, '
        '"instruction": "..."}, ...].',
        widget=forms.Textarea(attrs={"rows": 8, "cols": 100, "class": "vLargeTextField"}),
    )

    class Meta:
        model = Flow
        fields = ["name"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "organization" in self.fields:
            field = cast(forms.ModelChoiceField, self.fields["organization"])
            field.queryset = organization_list_for_user(user=self.user).order_by("name")
        if not self.instance._state.adding:
            self.initial.setdefault("task_operations", _steps_as_input(self.instance))
            self.initial.setdefault("dependencies", _edges_as_input(self.instance))

    def check(self, cleaned: dict[str, Any]) -> None:
        organization = cleaned.get("organization") or self.instance.organization
        body = {
            "name": cleaned["name"],
            "organization": str(organization.id),
            "task_operations": cleaned["task_operations"],
            "dependencies": cleaned.get("dependencies") or [],
        }
        arguments = self.parsed(FlowInputSerializer, body).to_service_kwargs()
        organization_for_write(user=self.user, organization_id=arguments["organization"])
        flow_validate(task_operations=arguments["task_operations"], dependencies=arguments["dependencies"])
        self.arguments = arguments

    def save_through_service(self, *, instance: Model | None) -> Model:
        if instance is None:
            return flow_create(user=self.user, **self.arguments)
        return flow_update(user=self.user, flow=cast(Flow, instance), **self.arguments)


@admin.register(Flow)
class FlowAdmin(OrganizationScopedAdmin, ServiceAdmin):
    """Flows, added, changed and deleted through the flow services (the DAG validated as by the API)."""

    form = FlowForm
    list_display = ["name", "organization", "created_date", "created_by_email"]
    list_filter = ["organization"]
    list_select_related = ["organization"]
    search_fields = ["name"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Flow]:
        """Deleted flows are gone here as from the API; their runs keep showing the versions they executed."""
        return super().get_queryset(request).filter(deleted_at__isnull=True)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        head = ["name", "organization"]
        record = ["planner", "planning_notes", *AUDIT] if obj is not None else []
        return [
            (None, {"fields": head}),
            ("Steps", {"fields": ["task_operations", "dependencies"]}),
            *([("Record", {"fields": record, "classes": ["collapse"]})] if record else []),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """A flow stays in its organization: chosen when it is added, shown afterwards."""
        if obj is None:
            return []
        return ["organization", "planner", "planning_notes", *AUDIT]

    @admin.display(description="task operations")
    def task_operations(self, flow: Flow) -> SafeString:
        """The steps as JSON, for who may only view the flow (editors get the form's text box)."""
        return format_html("<pre>{}</pre>", json.dumps(_steps_as_input(flow), indent=2, ensure_ascii=False))

    @admin.display(description="dependencies")
    def dependencies(self, flow: Flow) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(_edges_as_input(flow), indent=2, ensure_ascii=False))

    def delete_model(self, request: HttpRequest, obj: Flow) -> None:
        flow_delete(user=cast(User, request.user), flow=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Flow]) -> None:
        for flow in queryset:
            flow_delete(user=cast(User, request.user), flow=flow)


@admin.register(FlowRequest)
class FlowRequestAdmin(OrganizationScopedAdmin, ReadOnlyAdmin):
    """What people (and webhooks) asked for: records, read-only."""

    list_display = ["__str__", "organization", "flow", "created_date", "created_by_email"]
    list_filter = ["organization"]
    list_select_related = ["organization", "flow"]
    search_fields = ["request_name", "request_instructions"]
    fields = ["request_name", "request_instructions", "request_metadata", "flow", "organization", *AUDIT]
