"""The webhooks' routes: the two viewsets go on the API router; the inbound path is added by ``neena.urls``."""

from django.urls import path

from apps.webhooks.views import InboundWebhookView, WebhookTriggerOperationViewSet, WebhookTriggerRunViewSet

routes = [
    ("webhook_trigger_operations", WebhookTriggerOperationViewSet, "webhook-trigger-operations"),
    ("webhook_trigger_runs", WebhookTriggerRunViewSet, "webhook-trigger-runs"),
]

inbound_urlpatterns = [
    path("webhooks/<uuid:operation_id>/", InboundWebhookView.as_view(), name="webhook-inbound"),
]
