"""Flows and flow requests in the admin.

A flow is added and changed here as through the API: its fields are the API's (name, organization, task_operations,
dependencies, the last two as the JSON the API takes), parsed by ``FlowInputSerializer`` and checked by
``flow_validate`` (the DAG's shape, live task definitions, parameter bindings) before anything is saved, so a cycle
or a bad binding is a form error; ``flow_create`` / ``flow_update`` then save it, ``flow_delete`` deletes it. Flow
requests are records here, read-only; so are flow versions, each page showing the version's steps and edges, a link
to the version before it, and what changed since (``apps.flows.versions.version_diff``). A run's page links to the
version it executed.
"""

import json
from dataclasses import dataclass
from typing import Any, cast

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from apps.accounts.admin import OrganizationScopedAdmin
from apps.accounts.models import Organization, User
from apps.accounts.selectors import organization_for_write, organization_list_for_user
from apps.core.admin import CheckedJSONField, ReadOnlyAdmin, ServiceAdmin, ServiceForm
from apps.flows.models import Flow, FlowRequest, FlowVersion
from apps.flows.selectors import flow_version_and_previous
from apps.flows.serializers import FlowInputSerializer
from apps.flows.services import flow_create, flow_delete, flow_update, flow_validate
from apps.flows.versions import OPERATION_FIELDS, content_of, version_diff

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
        target = organization_for_write(user=self.user, organization_id=arguments["organization"])
        flow_validate(
            task_operations=arguments["task_operations"],
            dependencies=arguments["dependencies"],
            organization_id=target.id,
        )
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

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[str, int], set[str], list[Any]]:
        """What the delete page lists: the flows alone. ``flow_delete`` deletes softly, so their versions, runs and
        history stay: Django's cascade (which would ask for the delete permission of the read-only versions, and
        refuse a flow with runs as protected) does not apply."""
        flows = list(objs)
        return [str(flow) for flow in flows], {str(Flow._meta.verbose_name_plural): len(flows)}, set(), []

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


# Who reads a run may read the version it executed (the run's page links to it), as who may read the flow may.
VERSION_READERS = ("flows.view_flow", "runs.view_flowrun", "runs.approve_flowrun")


def version_admin_url(version: FlowVersion) -> str:
    """The admin page of a flow version."""
    return reverse("admin:flows_flowversion_change", args=[quote(version.pk)])


def _as_text(value: Any) -> str:
    """Strings as they are; anything else as indented JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class ChangeDetail:
    """One changed thing of a step or an edge: its label, and its value before and after (empty where none)."""

    label: str
    before: str
    after: str


@dataclass(frozen=True)
class ChangeView:
    """One step or edge a version added, removed or changed, with what exactly."""

    kind: str
    subject: str
    details: list[ChangeDetail]


def _step_details(step: dict[str, Any], side: str, task_names: dict[str, str]) -> list[ChangeDetail]:
    """A whole step (added or removed), its fields and parameters on ``side`` ("before" or "after")."""

    def detail(label: str, value: Any) -> ChangeDetail:
        text = _as_text(value)
        return ChangeDetail(label, text if side == "before" else "", text if side == "after" else "")

    details = [detail("task", task_names.get(step["task_definition"], step["task_definition"]))]
    shown = [name for name in OPERATION_FIELDS if name != "task_definition" and step[name] not in (None, "")]
    details.extend(detail(name, step[name]) for name in shown)
    details.extend(detail(f"parameter {name}", value) for name, value in step["parameters"].items())
    return details


def version_changes(diff: dict[str, Any], task_names: dict[str, str]) -> list[ChangeView]:
    """A ``version_diff`` as rows a person reads: each step and edge added, removed or changed, tasks by name."""
    operations, edges = diff["task_operations"], diff["dependencies"]
    rows = [
        ChangeView("added", f"Step {step['index']}: {step['name']}", _step_details(step, "after", task_names))
        for step in operations["added"]
    ]
    rows.extend(
        ChangeView("removed", f"Step {step['index']}: {step['name']}", _step_details(step, "before", task_names))
        for step in operations["removed"]
    )
    for changed in operations["changed"]:
        details = []
        for name, change in changed["fields"].items():
            before, after = change["before"], change["after"]
            if name == "task_definition":
                name, before, after = "task", task_names.get(before, before), task_names.get(after, after)
            details.append(ChangeDetail(name, _as_text(before), _as_text(after)))
        parameters = changed["parameters"]
        details.extend(ChangeDetail(f"parameter {n}", "", _as_text(v)) for n, v in parameters["added"].items())
        details.extend(ChangeDetail(f"parameter {n}", _as_text(v), "") for n, v in parameters["removed"].items())
        details.extend(
            ChangeDetail(f"parameter {n}", _as_text(c["before"]), _as_text(c["after"]))
            for n, c in parameters["changed"].items()
        )
        rows.append(ChangeView("changed", f"Step {changed['index']}", details))

    def edge(row: dict[str, Any]) -> str:
        return f"Edge {row['source_task_operation']} \u2192 {row['target_task_operation']}"

    rows.extend(
        ChangeView(
            "added", edge(row), [ChangeDetail("instruction", "", row["instruction"])] if row["instruction"] else []
        )
        for row in edges["added"]
    )
    rows.extend(
        ChangeView(
            "removed", edge(row), [ChangeDetail("instruction", row["instruction"], "")] if row["instruction"] else []
        )
        for row in edges["removed"]
    )
    rows.extend(
        ChangeView(
            "changed",
            edge(row),
            [ChangeDetail("instruction", row["instruction"]["before"], row["instruction"]["after"])],
        )
        for row in edges["changed"]
    )
    return rows


@admin.register(FlowVersion)
class FlowVersionAdmin(OrganizationScopedAdmin, ReadOnlyAdmin):
    """A flow's versions, immutable records: each page shows the version's steps and edges, links to the version
    before it and shows what changed since, readably. Versions of deleted flows stay here: their runs link to them."""

    organization_path = "flow__organization"
    list_display = ["__str__", "flow", "number", "summary", "created_date", "created_by_email"]
    list_filter = ["flow__organization"]
    list_select_related = ["flow"]
    search_fields = ["flow__name", "summary"]
    ordering = ["flow", "-number"]
    fields = ["flow", "number", "summary", "created_by_email", "created_date", "id"]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        may_view = super().has_view_permission(request, obj) or any(
            request.user.has_perm(permission) for permission in VERSION_READERS
        )
        return may_view and self.is_visible(request, obj)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: FlowVersion | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context.update(self._version_context(obj))
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def _version_context(self, version: FlowVersion) -> dict[str, Any]:
        """The version's steps and edges, the previous version's link, and the changes from it."""
        version, previous = flow_version_and_previous(version=version)
        operations = list(version.task_operations.all())
        task_names = {
            str(operation.task_definition_id): operation.task_definition.task_name for operation in operations
        }
        changes: list[ChangeView] = []
        if previous is not None:
            before = list(previous.task_operations.all())
            task_names.update(
                {str(operation.task_definition_id): operation.task_definition.task_name for operation in before}
            )
            diff = version_diff(
                content_of(before, previous.dependencies.all()), content_of(operations, version.dependencies.all())
            )
            changes = version_changes(diff, task_names)
        return {
            "operations": [
                {"operation": operation, "parameters": _as_text(operation.parameters) if operation.parameters else ""}
                for operation in operations
            ],
            "edges": list(version.dependencies.all()),
            "previous": previous,
            "previous_url": version_admin_url(previous) if previous is not None else "",
            "changes": changes,
        }
