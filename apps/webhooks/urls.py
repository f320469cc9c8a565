from apps.webhooks.views import WebhookTriggerOperationViewSet

routes = [("webhook_trigger_operations", WebhookTriggerOperationViewSet, "webhook-trigger-operations")]
