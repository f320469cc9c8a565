"""Webhook trigger operations (an organization's subscription to an integration event that starts flows) and their
trigger runs (one per delivered event)."""

from django.db import models

from apps.core.models import OwnedModel


class WebhookTriggerOperation(OwnedModel):
    """Turns each event of a trigger definition into a flow request whose instructions are ``template_body`` with
    every ``<{field}>`` replaced by that event field's value. Inactive (and failed) operations accept no events.

    ``signing_secret_ciphertext`` holds the secret deliveries are signed with, encrypted like credentials; the API
    shows it only when it is made (create, rotate). ``consecutive_failures`` counts trigger runs failed in a row: at
    NEENA_WEBHOOK_MAX_CONSECUTIVE_FAILURES the operation is set to failed, and updating it reactivates it.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        INACTIVE = "inactive", "Inactive"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=255)
    webhook_trigger_definition = models.ForeignKey(
        "integrations.WebhookTriggerDefinition", on_delete=models.PROTECT, related_name="operations"
    )
    template_body = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.INACTIVE)
    signing_secret_ciphertext = models.TextField(blank=True, default="")
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_failure_reason = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_date"], name="trigger_op_org_created")]

    def __str__(self) -> str:
        return self.name


class TriggerRun(OwnedModel):
    """One verified delivery to an operation, stored before anything else is done with it, so a broken planner or
    credential never loses an event.

    ``delivery_id`` is the integration's delivery id (or a hash of the body when it sends none); a repeated one is
    the same event and starts nothing. A worker takes the run from received to processing, extracts the event fields,
    creates the flow request and starts the flow run: completed means the flow run was started (its own status says
    how it went); failed keeps the reason.
    """

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSING = "processing", "Processing"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    operation = models.ForeignKey(WebhookTriggerOperation, on_delete=models.CASCADE, related_name="trigger_runs")
    delivery_id = models.CharField(max_length=255)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    reason = models.TextField(blank=True, default="")
    event_fields = models.JSONField(default=dict, blank=True)
    flow_request = models.ForeignKey(
        "flows.FlowRequest", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    flow_run = models.ForeignKey("runs.FlowRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["operation", "delivery_id"], name="unique_delivery_per_operation")
        ]
        indexes = [
            models.Index(fields=["organization", "-created_date"], name="trigger_run_org_created"),
            models.Index(fields=["operation", "-created_date"], name="trigger_run_op_created"),
            models.Index(fields=["status", "modified_date"], name="trigger_run_status_modified"),
        ]

    def __str__(self) -> str:
        return f"{self.operation_id} delivery {self.delivery_id}"
