from django.contrib import admin

from apps.runs.models import FlowResult, FlowRun, TaskRun

TASK_RUN_FIELDS = ("task_operation_index", "status", "start_time", "end_time", "task_prep_answer", "result", "error")


class TaskRunInline(admin.TabularInline):
    model = TaskRun
    extra = 0
    can_delete = False
    fields = TASK_RUN_FIELDS
    readonly_fields = TASK_RUN_FIELDS


@admin.register(FlowRun)
class FlowRunAdmin(admin.ModelAdmin):
    list_display = ["id", "flow", "status", "approval_status", "triggered_by", "triggered_time", "end_time"]
    list_filter = ["status", "approval_status", "organization"]
    search_fields = ["id", "triggered_by", "flow__name"]
    readonly_fields = [
        "id",
        "organization",
        "flow",
        "flow_request",
        "status",
        "approval_status",
        "triggered_time",
        "end_time",
        "triggered_by",
        "created_date",
        "modified_date",
    ]
    exclude = ["created_by_email", "modified_by_email"]
    inlines = [TaskRunInline]


@admin.register(FlowResult)
class FlowResultAdmin(admin.ModelAdmin):
    list_display = ["integration_short_name", "integration_entity_id", "flow_run", "created_date"]
    list_filter = ["integration_short_name", "organization"]
    search_fields = ["integration_entity_id", "body"]
    readonly_fields = ["id", "organization", "flow_run", "trigger_run_id", "created_date", "modified_date"]
