"""Flow runs (one execution of a flow for a flow request), their task runs, and flow results."""

from django.db import models

from apps.core.models import BaseModel, OwnedModel


class FlowRun(OwnedModel):
    """One execution of a flow for a flow request.

    ``status``: pending -> in_progress -> (awaiting_approval) -> completed | failed | cancelled.
    ``approval_status``: null (nothing to approve) | pending | approved | rejected.
    ``flow_version`` is what the run executes, fixed when it is created: editing or deleting the flow afterwards
    changes nothing of it (``flow`` is that version's flow).
    The trigger is a reference: ``trigger_user`` (a person started it: the API, a rerun, the admin) or
    ``trigger_webhook_operation`` (a webhook delivery started it; the operation's creator is who it acted as), never
    both. ``triggered_by`` keeps the readable name the API reports (the email, or ``webhook:<operation name>``), and
    is all that is left when the user or the operation is deleted (the references are then null).
    ``retried_by_user`` (and ``retried_by_email``) is who last retried the run: a retry keeps the trigger, but what
    it prepares again is the retrier's doing, so ``forbid_self_approval`` refuses them too.
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
    flow_version = models.ForeignKey("flows.FlowVersion", on_delete=models.PROTECT, related_name="runs")
    flow_request = models.ForeignKey("flows.FlowRequest", on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.PENDING)
    # null, not "": the documented API reports null when there is nothing to approve.
    approval_status = models.CharField(  # noqa: DJ001
        max_length=16, choices=ApprovalStatus.choices, null=True, blank=True
    )
    triggered_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    triggered_by = models.CharField(max_length=254, blank=True, default="", help_text="Who or what started the run.")
    trigger_user = models.ForeignKey(
        "accounts.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The user who started the run (null for webhook-started runs, or once the user is deleted).",
    )
    trigger_webhook_operation = models.ForeignKey(
        "webhooks.WebhookTriggerOperation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The webhook operation whose delivery started the run (null once it is deleted).",
    )
    retried_by_user = models.ForeignKey(
        "accounts.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The user who last retried the run (null if never retried, by a command, or once the user is "
        "deleted); forbid_self_approval refuses them as decider, as it does the trigger.",
    )
    retried_by_email = models.CharField(
        max_length=254,
        blank=True,
        default="",
        help_text="Who last retried the run: the user's email, or the command's name; kept when the user is deleted.",
    )
    approved_by = models.CharField(max_length=254, blank=True, default="")
    approved_at = models.DateTimeField(null=True, blank=True)
    approval_comment = models.TextField(blank=True, default="")
    approval_requested_at = models.DateTimeField(null=True, blank=True)
    status_reason = models.TextField(blank=True, default="", help_text="Why the run failed or was cancelled.")
    rerun_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="reruns")
    rerun_from_index = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="For a rerun from a step: that step's index. The steps not downstream of it were copied from "
        "rerun_of (their task runs' copied_from), not run again.",
    )

    TERMINAL = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)

    class Meta:
        permissions = [("approve_flowrun", "Can approve and reject flow runs")]
        indexes = [
            models.Index(fields=["organization", "-created_date"], name="flow_run_org_created"),
            models.Index(fields=["flow", "-created_date"], name="flow_run_flow_created"),
            models.Index(fields=["status", "approval_status"], name="flow_run_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(trigger_user__isnull=True) | models.Q(trigger_webhook_operation__isnull=True),
                name="flow_run_one_trigger",
            )
        ]

    def __str__(self) -> str:
        return f"Run {self.id} of {self.flow_id} ({self.status})"


class TaskRun(BaseModel):
    """One step of a flow run: its prepared parameters, its result or error.

    ``status``: pending -> preparing -> (awaiting_approval) -> in_progress -> completed | failed | cancelled | skipped.
    ``task_prep_prompt`` holds the messages describing the step; ``task_prep_answer`` the prepared ``parameters``.
    ``task_operation`` is the step of the run's flow version (immutable; null only for task runs whose step an edit
    removed before flows had versions). ``approved_step`` is what an approval fixed (see
    ``apps.runs.services.approved_steps``): the step runs exactly that, or fails. ``copied_from`` marks a step of a
    rerun from a later step: it was never run here, its result is the source task run's. ``parameter_overrides`` are
    the values a rerun from this step set (``apps.runs.services.replays``); its preparation uses them first.
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
        "flows.TaskOperation", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    task_operation_index = models.PositiveIntegerField()
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.PENDING)
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    task_prep_prompt = models.JSONField(default=dict, blank=True)
    task_prep_answer = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    attempt = models.PositiveIntegerField(default=0, help_text="Transient-error retries so far.")
    run_retries = models.PositiveIntegerField(
        default=0,
        help_text="How many times a retry of the run started this step over; part of its idempotency key, so each "
        "run retry calls with a new one.",
    )
    lease_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="While a worker holds the step; past it, the sweeper re-queues the step."
    )
    enqueued_at = models.DateTimeField(null=True, blank=True, help_text="When a job for the step was last queued.")
    approved_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when the step's side effect was approved; it then runs as prepared."
    )
    approved_step = models.JSONField(
        default=dict,
        blank=True,
        help_text="What the approval fixed: task definition, integration, credential and parameters, with their "
        "fingerprint. Empty when not approved.",
    )
    copied_from = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="copies",
        help_text="The task run of an earlier run whose result this one holds (a rerun from a later step); it was "
        "not run again.",
    )
    parameter_overrides = models.JSONField(
        default=dict, blank=True, help_text="Parameter values set by a rerun from this step, by name, already typed."
    )

    TERMINAL = (Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.SKIPPED)
    RUNNING = (Status.PREPARING, Status.IN_PROGRESS)

    class Meta:
        ordering = ["task_operation_index"]
        indexes = [models.Index(fields=["status", "lease_expires_at"], name="task_run_status_lease")]
        constraints = [
            models.UniqueConstraint(fields=["flow_run", "task_operation_index"], name="unique_task_run_per_step")
        ]

    def __str__(self) -> str:
        return f"Step {self.task_operation_index} ({self.status})"


class TaskRunAttempt(BaseModel):
    """One attempt at a task run: from the claim that started it to what ended it, kept for good so that retries,
    approvals and the sweeper's re-queues stay visible (the run's timeline).

    Written only by the engine's state changes (``apps.runs.services.transitions``), in the transaction of the task
    run's move that starts or ends it. ``number`` counts a task run's attempts 1, 2, ... without gaps (a claim is
    exclusive, so two attempts never take the same number). ``idempotency_key`` is the key the attempt's calls carry:
    transient retries change it; a re-queue after a lost worker keeps it, so a service that honours it does not act
    twice. ``ended_at`` is null while the attempt runs.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        RETRIED = "retried", "Failed (transient error), retried"
        AWAITING_APPROVAL = "awaiting_approval", "Stopped for approval"
        CANCELLED = "cancelled", "Cancelled"
        ABANDONED = "abandoned", "Abandoned (worker lost)"

    task_run = models.ForeignKey(TaskRun, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    idempotency_key = models.CharField(max_length=100)

    class Meta:
        ordering = ["task_run", "number"]
        constraints = [models.UniqueConstraint(fields=["task_run", "number"], name="unique_task_run_attempt_number")]

    def __str__(self) -> str:
        return f"Attempt {self.number} ({self.status})"


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


class ApprovalDecision(BaseModel):
    """The audit of one approval decision: who decided, when, what, why, and which parameters they changed.

    ``decided_by_user`` references the deciding user (null for automatic decisions, or once the user is deleted);
    ``decided_by`` keeps their email (or ``approval timeout``) as the API shows it.
    """

    class Decision(models.TextChoices):
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    flow_run = models.ForeignKey(FlowRun, on_delete=models.CASCADE, related_name="approval_decisions")
    task_run = models.ForeignKey(TaskRun, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    decision = models.CharField(max_length=16, choices=Decision.choices)
    decided_by = models.CharField(max_length=254, help_text="An email, or 'approval timeout' for automatic ones.")
    decided_by_user = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    comment = models.TextField(blank=True, default="")
    overrides = models.JSONField(
        default=list, blank=True, help_text="[{name, old_value, new_value}] for each parameter the approver changed."
    )
    approved_step = models.JSONField(
        default=dict, blank=True, help_text="What the decision approved for the step (the task run's approved_step)."
    )

    class Meta:
        ordering = ["created_date"]

    def __str__(self) -> str:
        return f"{self.decision} by {self.decided_by}"
