"""``/api/v1/webhook_trigger_operations/``: create, read, list, delete."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.query import IdQuerySerializer
from apps.core.viewsets import QueryStringViewSet
from apps.webhooks import services
from apps.webhooks.models import WebhookTriggerOperation
from apps.webhooks.selectors import trigger_operation_list_for_user
from apps.webhooks.serializers import TriggerOperationInputSerializer, TriggerOperationSerializer


@extend_schema_view(
    list=extend_schema(summary="Read all webhook trigger operations"),
    retrieve=extend_schema(summary="Read a webhook trigger operation", parameters=[IdQuerySerializer]),
    create=extend_schema(
        summary="Create a webhook trigger operation",
        description="Every <{field}> in template_body must be an event field of the trigger definition.",
        request=TriggerOperationInputSerializer,
    ),
    destroy=extend_schema(
        summary="Remove a webhook trigger operation",
        parameters=[IdQuerySerializer],
        responses=TriggerOperationSerializer,
    ),
)
class WebhookTriggerOperationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, QueryStringViewSet):
    serializer_class = TriggerOperationSerializer

    def get_queryset(self) -> QuerySet[WebhookTriggerOperation]:
        return trigger_operation_list_for_user(user=self.user)

    def create(self, request: Request) -> Response:
        serializer = TriggerOperationInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        operation = services.trigger_operation_create(user=self.user, **serializer.validated_data)
        return Response(TriggerOperationSerializer(operation).data)

    def destroy(self, request: Request) -> Response:
        operation = self.get_object()
        body = TriggerOperationSerializer(operation).data
        services.trigger_operation_delete(operation=operation)
        return Response(body)
