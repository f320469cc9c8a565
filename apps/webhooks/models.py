"""Webhook trigger operations: an organization's subscription to an integration event that starts flows."""

from django.db import models

from apps.core.models import OwnedModel


class WebhookTriggerOperation(OwnedModel):
    """Turns each event of a trigger definition into a flow request whose instructions are ``template_body`` with
    every ``<{field}>`` replaced by that event field's value. Inactive operations accept no events."""

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

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_date"], name="trigger_op_org_created")]

    def __str__(self) -> str:
        return self.name
