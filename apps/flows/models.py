"""Flow requests (what a person asked for) and flows (the plan: a DAG of task operations)."""

from typing import Any

from django.db import models

from apps.core.models import BaseModel, OwnedModel

# The longest name of a flow or a flow request. The original web frontend names a flow it saves "Flow for <the
# request's instructions>", and requests run to 512 characters there, so 255 refused the flows of long requests; the
# original had no cap at all. Twice the longest such name, and still a bound.
NAME_MAX_LENGTH = 1024


class Flow(OwnedModel):
    """A plan: task operations (steps) and the dependencies between them. It can be executed many times."""

    name = models.CharField(max_length=NAME_MAX_LENGTH)
    planner = models.CharField(
        max_length=16, blank=True, default="", help_text="Which planner generated the flow; empty when made by hand."
    )
    planning_notes = models.JSONField(
        default=list, blank=True, help_text="What the planner could not express (conditions) or fell back from."
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


class TaskOperation(BaseModel):
    """One step of a flow: a task definition, the instruction for it, and optional explicit parameter bindings.

    ``index`` is the step's number in the flow (0..n-1, as clients address it); ``sorted_index`` its position in the
    flow's deterministic topological order. ``parameters`` maps parameter names to a literal or a template such as
    ``{{ steps.0.result.ticket_id }}`` or ``{{ request.metadata.customer_email }}``.
    """

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="task_operations")
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
        constraints = [models.UniqueConstraint(fields=["flow", "index"], name="unique_task_operation_index")]

    def __str__(self) -> str:
        return f"{self.index}: {self.name}"


class Dependency(BaseModel):
    """An edge of the DAG, by step index: the target runs after the source; ``instruction`` says what passes along."""

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="dependencies")
    source_task_operation = models.PositiveIntegerField()
    target_task_operation = models.PositiveIntegerField()
    instruction = models.TextField(blank=True, default="")

    class Meta:
        verbose_name_plural = "dependencies"
        ordering = ["source_task_operation", "target_task_operation"]
        constraints = [
            models.UniqueConstraint(
                fields=["flow", "source_task_operation", "target_task_operation"], name="unique_dependency"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source_task_operation} -> {self.target_task_operation}"


class FlowRequest(OwnedModel):
    """A natural-language request; planning turns it into a flow, and each execution pairs a flow with a request."""

    request_instructions = models.TextField()
    request_metadata = models.JSONField(default=list, blank=True)
    request_name = models.CharField(max_length=NAME_MAX_LENGTH, blank=True, default="")
    flow = models.ForeignKey(Flow, on_delete=models.SET_NULL, null=True, blank=True, related_name="flow_requests")

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
