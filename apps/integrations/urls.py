from apps.integrations.views import IntegrationViewSet, TaskDefinitionViewSet, WebhookTriggerDefinitionViewSet

routes = [
    ("integrations", IntegrationViewSet, "integrations"),
    ("task_definitions", TaskDefinitionViewSet, "task-definitions"),
    ("webhook_trigger_definitions", WebhookTriggerDefinitionViewSet, "webhook-trigger-definitions"),
]
