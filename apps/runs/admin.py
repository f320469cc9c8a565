"""Flow runs in the admin: the queue of runs awaiting approval, approve and reject (in bulk or one run at a time), and
a run's page with the flow version it executes (linked to the version's page, which shows its changes from the
version before), its DAG, its steps' prepared parameters, results and attempts, and the approval audit.

Thin on purpose: decisions go through ``apps.runs.services.approval`` (the functions the API calls); this module
parses the request, calls them and renders the outcome as admin messages. Runs are made by the engine, so nothing
here adds, edits or deletes them. Approving and rejecting needs the ``runs.approve_flowrun`` permission, and staff who
are not superusers see and decide on only their organizations' runs. Results, task runs and the approval audit are
records, read-only.
"""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST

from apps.accounts.admin import OrganizationScopedAdmin
from apps.accounts.models import User
from apps.core.admin import ReadOnlyAdmin
from apps.core.exceptions import ApplicationError, ConflictError
from apps.flows.admin import version_admin_url
from apps.runs.drawing import DagNode, dag_svg, status_colors
from apps.runs.models import ApprovalDecision, FlowResult, FlowRun, TaskRun, TaskRunAttempt
from apps.runs.selectors import ATTEMPTS_ATTRIBUTE, task_runs_with_attempts
from apps.runs.services.approval import run_approve, run_reject

if TYPE_CHECKING:
    from django.contrib.admin.filters import _ListFilterChoices

APPROVE_PERMISSION = "runs.approve_flowrun"

# A decision service: run_approve or run_reject, called with flow_run, user and comment.
Decide = Callable[..., FlowRun]


class ApprovalFilter(admin.SimpleListFilter):
    """Runs by approval status. With no choice made it shows the runs awaiting approval: the approvers' queue."""

    title = "approval"
    parameter_name = "approval_status"
    NOT_NEEDED = "none"
    ALL = "all"
    DEFAULT = FlowRun.ApprovalStatus.PENDING.value

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            (FlowRun.ApprovalStatus.PENDING, "Awaiting approval"),
            (FlowRun.ApprovalStatus.APPROVED, "Approved"),
            (FlowRun.ApprovalStatus.REJECTED, "Rejected"),
            (self.NOT_NEEDED, "No approval needed"),
            (self.ALL, "All runs"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        choice = self.value() or self.DEFAULT
        if choice == self.ALL:
            return queryset
        if choice == self.NOT_NEEDED:
            return queryset.filter(approval_status__isnull=True)
        return queryset.filter(approval_status=choice)

    def choices(self, changelist: ChangeList) -> Iterator["_ListFilterChoices"]:
        """Django's choices without its leading "All", which would mean "no choice", here the default; "All runs"
        is a choice of its own."""
        current = self.value() or self.DEFAULT
        for lookup, title in self.lookup_choices:
            yield {
                "selected": current == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }


class FlowRunChangeList(ChangeList):
    """Django's changelist without the "(Show all)" link beside the search box: that link leads to the unfiltered
    URL, which here is the default "awaiting approval" view, not all runs. "All runs" is a choice of the filter."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.full_result_count = self.result_count


class DecisionForm(forms.Form):
    """The Approve / Reject form of a run's page: one optional comment, kept in the approval audit."""

    comment = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 60}), help_text="Kept in the approval audit."
    )


@dataclass(frozen=True)
class ParameterView:
    """One prepared parameter of a step, its value as text."""

    name: str
    value: str
    explanation: str
    source: str


@dataclass(frozen=True)
class StepView:
    """What the run's page shows of one step; ``attempts`` are its latest, newest first, of ``attempts_total``."""

    task_run: TaskRun
    name: str
    task: str
    fill: str
    stroke: str
    parameters: list[ParameterView]
    result: str
    attempts: list[TaskRunAttempt]
    attempts_total: int


@dataclass(frozen=True)
class OverrideView:
    name: str
    old_value: str
    new_value: str


@dataclass(frozen=True)
class DecisionView:
    """One row of the approval audit."""

    decision: ApprovalDecision
    step: str
    overrides: list[OverrideView]


def _as_text(value: Any) -> str:
    """Strings as they are; anything else as indented JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _step_view(task_run: TaskRun) -> StepView:
    operation = task_run.task_operation
    answer = task_run.task_prep_answer if isinstance(task_run.task_prep_answer, dict) else {}
    colors = status_colors(task_run.status)
    return StepView(
        task_run=task_run,
        name=operation.name if operation else "(step removed from the flow)",
        task=operation.task_definition.task_name if operation else "",
        fill=colors.fill,
        stroke=colors.stroke,
        parameters=[
            ParameterView(
                name=str(parameter.get("name", "")),
                value=_as_text(parameter.get("value")),
                explanation=str(parameter.get("explanation", "")),
                source=str(parameter.get("source", "")),
            )
            for parameter in answer.get("parameters", [])
            if isinstance(parameter, dict)
        ],
        result="" if task_run.result is None else _as_text(task_run.result),
        attempts=getattr(task_run, ATTEMPTS_ATTRIBUTE),
        attempts_total=cast(Any, task_run).attempts_total,
    )


def _decision_view(decision: ApprovalDecision) -> DecisionView:
    overrides = decision.overrides if isinstance(decision.overrides, list) else []
    return DecisionView(
        decision=decision,
        step=f"Step {decision.task_run.task_operation_index}" if decision.task_run else "Whole run",
        overrides=[
            OverrideView(
                name=str(override.get("name", "")),
                old_value=_as_text(override.get("old_value")),
                new_value=_as_text(override.get("new_value")),
            )
            for override in overrides
            if isinstance(override, dict)
        ],
    )


def _run_label(flow_run: FlowRun) -> str:
    return f"run {flow_run.id} of \u201c{flow_run.flow.name}\u201d"


@admin.register(FlowRun)
class FlowRunAdmin(OrganizationScopedAdmin, ReadOnlyAdmin):
    """Runs, read-only, opening on the ones awaiting approval; approvers decide here with the API's services."""

    list_display = [
        "id",
        "flow",
        "status",
        "approval_status",
        "triggered_by",
        "triggered_time",
        "approval_requested_at",
        "end_time",
    ]
    list_filter = [ApprovalFilter, "status", "organization"]
    list_select_related = ["flow"]
    search_fields = ["id", "triggered_by", "flow__name"]
    ordering = ["-created_date"]
    # Spares a COUNT of every run; FlowRunChangeList hides the link it would feed.
    show_full_result_count = False
    fieldsets = [
        (None, {"fields": ["id", "flow", "version", "flow_request", "organization", "rerun_of"]}),
        (
            "State",
            {
                "fields": [
                    "status",
                    "status_reason",
                    "triggered_by",
                    "trigger_user",
                    "trigger_webhook_operation",
                    "triggered_time",
                    "end_time",
                ]
            },
        ),
        (
            "Approval",
            {"fields": ["approval_status", "approval_requested_at", "approved_by", "approved_at", "approval_comment"]},
        ),
        (
            "Record",
            {
                "fields": ["created_date", "modified_date", "created_by_email", "modified_by_email"],
                "classes": ["collapse"],
            },
        ),
    ]
    actions = ["approve_selected", "reject_selected"]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return FlowRunChangeList

    @admin.display(description="flow version")
    def version(self, flow_run: FlowRun) -> SafeString:
        """The version the run executes, linked to its page, and to that page's changes from the version before."""
        version = flow_run.flow_version
        url = version_admin_url(version)
        if version.number == 1:
            return format_html('<a id="run-version" href="{}">Version 1</a> (the first)', url)
        return format_html(
            '<a id="run-version" href="{}">Version {}</a> (<a id="run-version-changes" href="{}#version-changes">'
            "changes from version {}</a>)",
            url,
            version.number,
            url,
            version.number - 1,
        )

    # --- Permissions: the engine makes runs (ReadOnlyAdmin: never added, changed or deleted here, which would delete
    # the approval audit too); approvers decide on their organizations' runs (OrganizationScopedAdmin) -------------

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Viewers, and approvers, who must see what they decide on; of their organizations' runs only."""
        may_view = super().has_view_permission(request, obj) or request.user.has_perm(APPROVE_PERMISSION)
        return may_view and self.is_visible(request, obj)

    def has_approve_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """May approve and reject runs (the ``permissions=["approve"]`` of the actions asks this), ``obj`` if given:
        the permission, and the run in one of the user's organizations."""
        return request.user.has_perm(APPROVE_PERMISSION) and self.is_visible(request, obj)

    # --- Bulk actions -----------------------------------------------------------------------------------------------

    @admin.action(permissions=["approve"], description="Approve selected runs")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[FlowRun]) -> None:
        self._decide_each(request, queryset, run_approve, "approved")

    @admin.action(permissions=["approve"], description="Reject selected runs")
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[FlowRun]) -> None:
        self._decide_each(request, queryset, run_reject, "rejected")

    def _selected_runs(self, request: HttpRequest, queryset: QuerySet[FlowRun]) -> list[FlowRun]:
        """The runs the user ticked. Django hands an action only those still matching the list's filters, so a run
        someone else decided meanwhile would silently drop out of the "awaiting approval" view; re-reading the ticked
        ids reports it as a conflict instead. Ids that name no run the user can see (another organization's, or none
        at all) are reported as not found, the two alike."""
        if request.POST.get("select_across") == "1":
            return list(queryset.select_related("flow").order_by("created_date"))
        # Each as an id (SelectionCheckedAdmin refused anything else): the same run posted twice counts once.
        ticked = {self.opts.pk.to_python(value) for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)}
        flow_runs = list(
            self.get_queryset(request).filter(pk__in=ticked).select_related("flow").order_by("created_date")
        )
        missing = len(ticked) - len(flow_runs)
        if missing:
            self.message_user(
                request,
                f"{missing} of the selected runs {'was' if missing == 1 else 'were'} not found; nothing was done to "
                f"{'it' if missing == 1 else 'them'}.",
                messages.ERROR,
            )
        return flow_runs

    def _decide_each(self, request: HttpRequest, queryset: QuerySet[FlowRun], decide: Decide, verb: str) -> None:
        """One decision per run, each in its own transaction (the service's); one message per run that failed."""
        decided = []
        for flow_run in self._selected_runs(request, queryset):
            if not self.has_approve_permission(request, flow_run):
                self.message_user(request, f"You may not decide on the {_run_label(flow_run)}.", messages.ERROR)
                continue
            try:
                decide(flow_run=flow_run, user=cast(User, request.user))
            except ApplicationError as error:
                level = messages.WARNING if isinstance(error, ConflictError) else messages.ERROR
                self.message_user(request, f"The {_run_label(flow_run)} was not {verb}: {error.message}", level)
            else:
                decided.append(flow_run)
        if decided:
            count = f"{len(decided)} run" + ("" if len(decided) == 1 else "s")
            runs = "; ".join(_run_label(flow_run) for flow_run in decided)
            self.message_user(request, f"{verb.capitalize()} {count}: {runs}.", messages.SUCCESS)

    # --- Approve and Reject on a run's page ---------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        # Before Django's own URLs: their catch-all "<path:object_id>/" would take these too.
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "<path:object_id>/approve/",
                self.admin_site.admin_view(require_POST(self.approve_view)),
                name=f"{name}_approve",
            ),
            path(
                "<path:object_id>/reject/",
                self.admin_site.admin_view(require_POST(self.reject_view)),
                name=f"{name}_reject",
            ),
            *super().get_urls(),
        ]

    def approve_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._decide_one(request, object_id, run_approve, "approved")

    def reject_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._decide_one(request, object_id, run_reject, "rejected")

    def _decide_one(self, request: HttpRequest, object_id: str, decide: Decide, verb: str) -> HttpResponse:
        """POST only (CSRF-checked by the admin site): parses the comment, calls the service, reports, redirects back to
        the run's page. The service's refusals (403, 409) become error messages."""
        if not self.has_approve_permission(request):
            raise PermissionDenied
        # Scoped: another organization's run is not found, exactly like an unknown id.
        flow_run = self.get_object(request, unquote(object_id))
        if flow_run is None or not self.has_approve_permission(request, flow_run):
            self.message_user(request, f"No flow run has the id \u201c{object_id}\u201d.", messages.WARNING)
            return HttpResponseRedirect(self._url("changelist"))
        form = DecisionForm(request.POST)
        if not form.is_valid():
            self.message_user(request, f"The run was not {verb}: {form.errors.as_text()}", messages.ERROR)
        else:
            try:
                decide(flow_run=flow_run, user=cast(User, request.user), comment=form.cleaned_data["comment"])
            except ApplicationError as error:
                self.message_user(request, f"The run was not {verb}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"The {_run_label(flow_run)} was {verb}.", messages.SUCCESS)
        return HttpResponseRedirect(self._url("change", flow_run))

    def _url(self, view: str, flow_run: FlowRun | None = None) -> str:
        """The URL of one of this admin's views: "changelist", or "change", "approve", "reject" of a run."""
        return reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_{view}",
            args=[] if flow_run is None else [quote(flow_run.pk)],
            current_app=self.admin_site.name,
        )

    # --- The run's page ---------------------------------------------------------------------------------------------

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: FlowRun | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context.update(self._run_context(request, obj))
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def _run_context(self, request: HttpRequest, flow_run: FlowRun) -> dict[str, Any]:
        """The DAG picture, the steps, the approval audit, and the decision form when this user may decide now."""
        task_runs = list(
            task_runs_with_attempts(
                flow_run.task_runs.select_related("task_operation__task_definition"),
                attempts_limit=settings.NEENA_DETAIL_TASK_RUN_ATTEMPTS_LIMIT,
            )
        )
        edges = list(flow_run.flow_version.dependencies.values_list("source_task_operation", "target_task_operation"))
        steps = [_step_view(task_run) for task_run in task_runs]
        nodes = [DagNode(step.task_run.task_operation_index, step.name, step.task_run.status) for step in steps]
        decisions = flow_run.approval_decisions.select_related("task_run")
        may_decide = self.has_approve_permission(request, flow_run)
        return {
            "dag_svg": dag_svg(nodes, edges),
            "steps": steps,
            "decisions": [_decision_view(decision) for decision in decisions],
            "can_decide": may_decide and flow_run.approval_status == FlowRun.ApprovalStatus.PENDING,
            "decision_form": DecisionForm(),
            "approve_url": self._url("approve", flow_run),
            "reject_url": self._url("reject", flow_run),
        }


@admin.register(FlowResult)
class FlowResultAdmin(OrganizationScopedAdmin, ReadOnlyAdmin):
    """What runs produced, per integration entity: records, read-only."""

    list_display = ["integration_short_name", "integration_entity_id", "flow_run", "created_date"]
    list_filter = ["integration_short_name", "organization"]
    search_fields = ["integration_entity_id", "body"]
    fields = [
        "id",
        "organization",
        "flow_run",
        "trigger_run_id",
        "integration_short_name",
        "integration_entity_id",
        "body",
        "created_date",
        "modified_date",
    ]


@admin.register(TaskRun)
class TaskRunAdmin(OrganizationScopedAdmin, ReadOnlyAdmin):
    """Steps of runs, as the engine left them: records, read-only (a run's page shows them in context)."""

    organization_path = "flow_run__organization"
    list_display = ["__str__", "flow_run", "status", "start_time", "end_time"]
    list_filter = ["status", "flow_run__organization"]
    list_select_related = ["flow_run"]
    search_fields = ["flow_run__id", "error"]
    fields = [
        "id",
        "flow_run",
        "task_operation",
        "task_operation_index",
        "status",
        "start_time",
        "end_time",
        "attempt",
        "task_prep_prompt",
        "task_prep_answer",
        "result",
        "error",
        "approved_at",
        "created_date",
        "modified_date",
    ]


@admin.register(ApprovalDecision)
class ApprovalDecisionAdmin(OrganizationScopedAdmin, ReadOnlyAdmin):
    """The approval audit: who decided what on which run, when and why. Never changed, never deleted."""

    organization_path = "flow_run__organization"
    list_display = ["decision", "decided_by", "flow_run", "created_date"]
    list_filter = ["decision", "flow_run__organization"]
    list_select_related = ["flow_run"]
    search_fields = ["decided_by", "comment", "flow_run__id"]
    fields = [
        "id",
        "flow_run",
        "task_run",
        "decision",
        "decided_by",
        "decided_by_user",
        "comment",
        "overrides",
        "created_date",
    ]
