"""MCP servers an organization registered: where each is and how to start it. Its tools are task definitions of the
integration it owns (``mcp:<name>``), written by ``mcp_server_sync``."""

from django.db import models

from apps.core.models import OwnedModel


class McpServer(OwnedModel):
    """One MCP server. ``secret_ciphertext`` holds its ``env`` (stdio) and ``headers`` (HTTP) encrypted; reads show
    only their names (``env_names``, ``header_names``)."""

    class Transport(models.TextChoices):
        STDIO = "stdio", "stdio"
        STREAMABLE_HTTP = "streamable_http", "Streamable HTTP"

    name = models.CharField(max_length=40)
    transport = models.CharField(max_length=16, choices=Transport.choices)
    command = models.CharField(max_length=500, blank=True, default="")
    args = models.JSONField(default=list, blank=True)
    url = models.URLField(max_length=2000, blank=True, default="")
    secret_ciphertext = models.TextField(blank=True, default="")
    env_names = models.JSONField(default=list, blank=True, help_text="Names of the stored env variables.")
    header_names = models.JSONField(default=list, blank=True, help_text="Names of the stored HTTP headers.")
    integration = models.OneToOneField(
        "integrations.Integration", on_delete=models.PROTECT, related_name="mcp_server", null=True, blank=True
    )
    tool_hints = models.JSONField(
        default=dict, blank=True, help_text="Per tool name, what its annotations promise: read_only, idempotent."
    )
    tool_count = models.PositiveIntegerField(default=0)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_sync_error = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="unique_mcp_server_name")]
        indexes = [models.Index(fields=["organization", "-created_date"], name="mcp_server_org_created")]

    def __str__(self) -> str:
        return f"mcp:{self.name}"
