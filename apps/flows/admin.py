from typing import Any

from django.contrib import admin
from django.db.models import F, QuerySet
from django.http import HttpRequest

from apps.flows.models import Dependency, Flow, FlowRequest, TaskOperation

AUDIT = ["id", "created_date", "modified_date", "created_by_email", "modified_by_email"]


class LatestVersionInline(admin.TabularInline):
    """A flow's rows of its latest version only (each version has its own)."""

    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).filter(flow_version=F("flow__latest_version"))


class TaskOperationInline(LatestVersionInline):
    model = TaskOperation
    fields = ["index", "sorted_index", "name", "task_definition", "instruction", "parameters"]
    readonly_fields = ["sorted_index"]
    autocomplete_fields = ["task_definition"]


class DependencyInline(LatestVersionInline):
    model = Dependency
    fields = ["source_task_operation", "target_task_operation", "instruction"]


@admin.register(Flow)
class FlowAdmin(admin.ModelAdmin):
    """Flows are changed through the API, which validates the whole DAG; the admin shows them."""

    list_display = ["name", "organization", "created_date", "created_by_email"]
    list_filter = ["organization"]
    search_fields = ["name"]
    readonly_fields = AUDIT
    inlines = [TaskOperationInline, DependencyInline]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(FlowRequest)
class FlowRequestAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization", "flow", "created_date", "created_by_email"]
    list_filter = ["organization"]
    search_fields = ["request_name", "request_instructions"]
    readonly_fields = AUDIT
    raw_id_fields = ["flow"]
