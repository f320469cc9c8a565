"""The catalogue: integrations, their task definitions and webhook trigger definitions.

Most rows are written by ``catalog_sync`` from the connector modules and are the same for every organization
(``organization`` empty). An organization's registered MCP servers add integrations of their own (``mcp:<name>``,
written by ``apps.mcp_servers``), which only that organization sees. The API and the admin read them. A declaration
removed from the code (or a tool gone from its server) keeps its row (flows may still point at it) with ``deleted_at``
set.
"""

from django.db import models

from apps.core.models import BaseModel, OwnedModel


class Integration(BaseModel):
    """An external service (or the built-in ``core``) that tasks and triggers belong to."""

    class AuthType(models.TextChoices):
        NONE = "none", "None"
        API_KEY = "api_key", "API key"
        OAUTH2 = "oauth2", "OAuth2"
        BASIC = "basic", "Basic"

    name = models.CharField(max_length=100)
    short_name = models.SlugField(max_length=50, unique=True)
    class_name = models.CharField(max_length=100)
    auth_type = models.CharField(max_length=16, choices=AuthType.choices)
    description = models.TextField(blank=True, default="")
    base_url_setting = models.CharField(max_length=100, blank=True, default="")
    oauth2_config = models.JSONField(default=dict, blank=True, help_text="Authorize, token and revoke URLs; scopes.")
    organization = models.ForeignKey(
        "accounts.Organization",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="Set for an organization's own integrations (its MCP servers); empty for the shared catalogue.",
    )
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# Integrations whose secrets a client hands over directly (POST /integration_credentials/); OAuth2 ones get theirs
# from the provider, and the rest need none.
DIRECT_SECRET_AUTH_TYPES = frozenset({Integration.AuthType.API_KEY, Integration.AuthType.BASIC})


class TaskDefinition(BaseModel):
    """A task an integration can perform, with typed input parameters and outputs.

    ``parameters`` and ``output_parameters`` are lists of ``{name, data_type, position, doc_string, optional,
    default}``; ``side_effect`` marks tasks that change the outside world, which approval policies gate.
    """

    integration = models.ForeignKey(Integration, on_delete=models.PROTECT, related_name="task_definitions")
    task_name = models.CharField(max_length=200)
    python_method_name = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="")
    parameters = models.JSONField(default=list)
    input_type = models.CharField(max_length=200, blank=True, default="")
    input_yml = models.TextField(blank=True, default="")
    output_parameters = models.JSONField(default=list)
    output_type = models.CharField(max_length=200, blank=True, default="")
    output_yml = models.TextField(blank=True, default="")
    output_is_list = models.BooleanField(default=False)
    side_effect = models.BooleanField(default=False)
    retry_policy = models.JSONField(default=dict, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["integration__name", "task_name"]
        constraints = [
            models.UniqueConstraint(fields=["integration", "python_method_name"], name="unique_task_per_integration")
        ]

    def __str__(self) -> str:
        return self.task_name

    @property
    def parameter_names(self) -> list[str]:
        return [parameter["name"] for parameter in self.parameters]


class WebhookTriggerDefinition(BaseModel):
    """An event an integration can deliver to Neena's webhooks, and the fields taken from its payload."""

    integration = models.ForeignKey(Integration, on_delete=models.PROTECT, related_name="webhook_trigger_definitions")
    trigger_name = models.CharField(max_length=200)
    python_method_name = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="")
    event_fields = models.JSONField(
        default=list, help_text="List of {name, json_path, data_type, doc_string, optional}."
    )
    entity_id_field = models.CharField(max_length=100, blank=True, default="")
    signature_scheme = models.CharField(max_length=50)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["integration__name", "trigger_name"]
        constraints = [
            models.UniqueConstraint(fields=["integration", "python_method_name"], name="unique_trigger_per_integration")
        ]

    def __str__(self) -> str:
        return self.trigger_name

    @property
    def event_field_names(self) -> list[str]:
        return [event_field["name"] for event_field in self.event_fields]


class Notification(OwnedModel):
    """An outbound notification recorded by the core ``Send Notification`` task.

    ``idempotency_key`` is unique: a step re-run after a worker died finds its notification instead of sending twice.
    """

    recipient = models.CharField(max_length=254)
    message = models.TextField()
    flow_run = models.ForeignKey("runs.FlowRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    idempotency_key = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ["-created_date"]

    def __str__(self) -> str:
        return f"To {self.recipient}: {self.message[:60]}"
