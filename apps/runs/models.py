"""Flow runs (one execution of a flow for a flow request), their task runs, and flow results."""

from django.db import models

from apps.core.models import BaseModel, OwnedModel


class FlowRun(OwnedModel):
    """One execution of a flow for a flow request.

    ``status``: pending -> in_progress -> (awaiting_approval) -> completed | failed | cancelled.
    ``approval_status``: null (nothing to approve) | pending | approved | rejected.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_PROGRESS = "in_progress", "In progress"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class ApprovalStatus(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    flow = models.ForeignKey("flows.Flow", on_delete=models.PROTECT, related_name="runs")
    flow_request = models.ForeignKey("flows.FlowRequest", on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.PENDING)
    # null, not "": the documented API reports null when there is nothing to approve.
    approval_status = models.CharField(  # noqa: DJ001
        max_length=16, choices=ApprovalStatus.choices, null=True, blank=True
    )
    triggered_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    triggered_by = models.CharField(max_length=254, blank=True, default="", help_text="Who or what started the run.")

    class Meta:
        indexes = [
            models.Index(fields=["organization", "-created_date"], name="flow_run_org_created"),
            models.Index(fields=["flow", "-created_date"], name="flow_run_flow_created"),
        ]

    def __str__(self) -> str:
        return f"Run {self.id} of {self.flow_id} ({self.status})"


class TaskRun(BaseModel):
    """One step of a flow run: its prepared parameters, its result or error.

    ``status``: pending -> preparing -> (awaiting_approval) -> in_progress -> completed | failed | cancelled | skipped.
    ``task_prep_prompt`` holds the messages describing the step; ``task_prep_answer`` the prepared ``parameters``.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PREPARING = "preparing", "Preparing"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        SKIPPED = "skipped", "Skipped"

    flow_run = models.ForeignKey(FlowRun, on_delete=models.CASCADE, related_name="task_runs")
    task_operation = models.ForeignKey(
        "flows.TaskOperation", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    task_operation_index = models.PositiveIntegerField()
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.PENDING)
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    task_prep_prompt = models.JSONField(default=dict, blank=True)
    task_prep_answer = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["task_operation_index"]
        constraints = [
            models.UniqueConstraint(fields=["flow_run", "task_operation_index"], name="unique_task_run_per_step")
        ]

    def __str__(self) -> str:
        return f"Step {self.task_operation_index} ({self.status})"


class FlowResult(OwnedModel):
    """The outcome of a run for one integration entity (a ticket, a mail); clients read the latest per entity."""

    flow_run = models.ForeignKey(FlowRun, on_delete=models.CASCADE, related_name="results")
    trigger_run_id = models.UUIDField(null=True, blank=True, help_text="The webhook trigger run that started the run.")
    integration_short_name = models.CharField(max_length=50)
    integration_entity_id = models.CharField(max_length=255)
    body = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            models.Index(
                fields=["organization", "integration_short_name", "integration_entity_id", "-created_date"],
                name="flow_result_entity_latest",
            )
        ]

    def __str__(self) -> str:
        return f"{self.integration_short_name}:{self.integration_entity_id}"
