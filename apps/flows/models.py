"""Flow requests (what a person asked for) and flows (the plan: a history of immutable versions, each a DAG of task
operations)."""

from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel, OwnedModel

# The longest name of a flow or a flow request. The original web frontend names a flow it saves "Flow for <the
# request's instructions>", and requests run to 512 characters there, so 255 refused the flows of long requests; the
# original had no cap at all. Twice the longest such name, and still a bound.
NAME_MAX_LENGTH = 1024


class Flow(OwnedModel):
    """A plan that can be executed many times: a name, and a history of immutable versions (``versions``), each
    holding task operations (steps) and the dependencies between them.

    What a run executes is a version, never the flow itself: every change of the steps, edges or bindings makes a
    new version, so a run (created, parked, approved or retried) keeps executing the one it was pinned to. The name
    and the planner's notes are not versioned. A deleted flow keeps its rows (``deleted_at``): its runs still point
    at its versions.
    """

    name = models.CharField(max_length=NAME_MAX_LENGTH)
    planner = models.CharField(
        max_length=16, blank=True, default="", help_text="Which planner generated the flow; empty when made by hand."
    )
    planning_notes = models.JSONField(
        default=list, blank=True, help_text="What the planner could not express (conditions) or fell back from."
    )
    latest_version = models.ForeignKey(
        "FlowVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The newest version: what a new run executes. Null only while the flow is being created.",
    )
    deleted_at = models.DateTimeField(
        null=True, blank=True, help_text="When the flow was deleted; its versions and runs stay as history."
    )

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_date"], name="flow_org_created")]

    def __str__(self) -> str:
        return self.name

    @property
    def created_by_human(self) -> bool:
        """True for a flow a person made, false for one a planner generated (``planner`` says which); editing a
        generated flow keeps it false. The original API's field, which its web frontend shows as a column."""
        return not self.planner

    @property
    def current_version(self) -> "FlowVersion":
        """The latest version, which a saved flow always has (``latest_version`` is null only while it is created)."""
        if self.latest_version is None:
            raise FlowVersion.DoesNotExist(f"Flow {self.id} has no version yet.")
        return self.latest_version

    @cached_property
    def shown_version(self) -> "FlowVersion":
        """The version an answer about the flow shows: the latest, unless the reader asked for another (the selector
        ``flow_at_version_for_user`` sets it)."""
        return self.current_version

    @property
    def task_operations(self) -> "models.Manager[TaskOperation]":
        """The steps of the latest version (a run's own steps are those of ``FlowRun.flow_version``)."""
        return self.current_version.task_operations

    @property
    def dependencies(self) -> "models.Manager[Dependency]":
        """The edges of the latest version."""
        return self.current_version.dependencies


class FlowVersion(BaseModel):
    """One immutable state of a flow's steps, edges and bindings, numbered 1, 2, ... per flow.

    Its task operations and dependencies are written once, when the version is made, and never updated or deleted:
    runs are pinned to a version, and what an approval showed is what runs. ``summary`` says what changed from the
    version before; ``created_by`` is who made the change (the email is kept too, for when the user is gone).
    """

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    summary = models.TextField(blank=True, default="", help_text="What changed from the version before.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["flow", "number"]
        constraints = [models.UniqueConstraint(fields=["flow", "number"], name="unique_flow_version_number")]

    def __str__(self) -> str:
        return f"{self.flow_id} v{self.number}"


class TaskOperation(BaseModel):
    """One step of a flow: a task definition, the instruction for it, and optional explicit parameter bindings.

    ``index`` is the step's number in the flow (0..n-1, as clients address it); ``sorted_index`` its position in the
    flow's deterministic topological order. ``parameters`` maps parameter names to a literal or a template such as
    ``{{ steps.0.result.ticket_id }}`` or ``{{ request.metadata.customer_email }}``. Never changed once saved: a
    change of the flow makes a new version with new rows.
    """

    flow_version = models.ForeignKey(FlowVersion, on_delete=models.CASCADE, related_name="task_operations")
    # The version's flow, kept on the row: answers show it, and the admin lists a flow's steps by it.
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="task_operations_of_every_version")
    task_definition = models.ForeignKey("integrations.TaskDefinition", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=255)
    instruction = models.TextField(blank=True, default="")
    x = models.FloatField(null=True, blank=True)
    y = models.FloatField(null=True, blank=True)
    index = models.PositiveIntegerField()
    sorted_index = models.PositiveIntegerField(null=True, blank=True)
    parameters = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["index"]
        constraints = [
            models.UniqueConstraint(fields=["flow_version", "index"], name="unique_task_operation_index_per_version")
        ]

    def __str__(self) -> str:
        return f"{self.index}: {self.name}"


class Dependency(BaseModel):
    """An edge of a flow version's DAG, by step index: the target runs after the source; ``instruction`` says what
    passes along. Never changed once saved, like the version's steps."""

    flow_version = models.ForeignKey(FlowVersion, on_delete=models.CASCADE, related_name="dependencies")
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="dependencies_of_every_version")
    source_task_operation = models.PositiveIntegerField()
    target_task_operation = models.PositiveIntegerField()
    instruction = models.TextField(blank=True, default="")

    class Meta:
        verbose_name_plural = "dependencies"
        ordering = ["source_task_operation", "target_task_operation"]
        constraints = [
            models.UniqueConstraint(
                fields=["flow_version", "source_task_operation", "target_task_operation"],
                name="unique_dependency_per_version",
            )
        ]

    def __str__(self) -> str:
        return f"{self.source_task_operation} -> {self.target_task_operation}"


class FlowRequest(OwnedModel):
    """A natural-language request; planning turns it into a flow, and each execution pairs a flow with a request.

    A deleted request keeps its row (``deleted_at``): it is gone from lists and reads, and its runs keep it as history.
    """

    request_instructions = models.TextField()
    request_metadata = models.JSONField(default=list, blank=True)
    request_name = models.CharField(max_length=NAME_MAX_LENGTH, blank=True, default="")
    flow = models.ForeignKey(Flow, on_delete=models.SET_NULL, null=True, blank=True, related_name="flow_requests")
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="When the request was deleted; its runs stay.")

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_date"], name="flow_request_org_created")]

    def __str__(self) -> str:
        return self.request_name or self.request_instructions[:60]

    def merged_metadata(self) -> dict[str, Any]:
        """The metadata as one object: an array of objects is merged in order (later keys win)."""
        if isinstance(self.request_metadata, dict):
            return dict(self.request_metadata)
        merged: dict[str, Any] = {}
        for item in self.request_metadata or []:
            if isinstance(item, dict):
                merged.update(item)
        return merged
