"""The ``webhook`` integration: start flows from any system that can POST signed JSON."""

from apps.integrations.connectors.base import (
    AuthType,
    ConnectorSpec,
    DataType,
    EventField,
    SignatureScheme,
    TriggerSpec,
)

CONNECTOR = ConnectorSpec(
    name="Webhook",
    short_name="webhook",
    class_name="WebhookIntegration",
    auth_type=AuthType.NONE,
    description="Generic inbound webhook: any system that can POST JSON signed with the operation's secret as "
    "Standard Webhooks says (webhook-id, webhook-timestamp, webhook-signature) can start a flow.",
    triggers=(
        TriggerSpec(
            trigger_name="Generic Event Received",
            python_method_name="event_received",
            description="Start a flow when any external system posts a signed JSON event to the operation's URL.",
            event_fields=(
                EventField(
                    "entity_id",
                    "$.entity_id",
                    DataType.STRING,
                    "The ID of the thing the event is about, e.g. an order or a ticket number.",
                ),
                EventField(
                    "event_type",
                    "$.event_type",
                    DataType.STRING,
                    "What happened, e.g. 'order.created'.",
                    optional=True,
                ),
                EventField("text", "$.text", DataType.TEXT, "Free text carried by the event.", optional=True),
                EventField("data", "$.data", DataType.JSON, "Any further structured data.", optional=True),
            ),
            entity_id_field="entity_id",
            signature_scheme=SignatureScheme.STANDARD_WEBHOOKS,
        ),
    ),
)
