"""The read-only catalogue: integrations, task definitions, webhook trigger definitions. Each caller sees the shared
catalogue and their organizations' own integrations (MCP servers)."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins

from apps.core.query import IdQuerySerializer
from apps.core.viewsets import QueryStringViewSet
from apps.integrations.models import Integration, TaskDefinition, WebhookTriggerDefinition
from apps.integrations.selectors import integration_list, task_definition_list, webhook_trigger_definition_list
from apps.integrations.serializers import (
    IntegrationSerializer,
    TaskDefinitionSerializer,
    WebhookTriggerDefinitionSerializer,
)


@extend_schema_view(list=extend_schema(summary="Read all integrations"))
class IntegrationViewSet(mixins.ListModelMixin, QueryStringViewSet):
    serializer_class = IntegrationSerializer
    narrow_list_by_header = False  # shared integrations have no organization: narrowed in get_queryset instead

    def get_queryset(self) -> QuerySet[Integration]:
        return integration_list(organization_ids=self.visible_organization_ids())


@extend_schema_view(
    list=extend_schema(summary="Read all task definitions"),
    retrieve=extend_schema(summary="Read a task definition", parameters=[IdQuerySerializer]),
)
class TaskDefinitionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, QueryStringViewSet):
    """Lists show live definitions; reading by id also finds removed ones (``deleted_at`` set)."""

    serializer_class = TaskDefinitionSerializer

    def get_queryset(self) -> QuerySet[TaskDefinition]:
        return task_definition_list(
            organization_ids=self.visible_organization_ids(), include_deleted=self.action == "retrieve"
        )


@extend_schema_view(
    list=extend_schema(summary="Read all webhook trigger definitions"),
    retrieve=extend_schema(summary="Read a webhook trigger definition", parameters=[IdQuerySerializer]),
)
class WebhookTriggerDefinitionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, QueryStringViewSet):
    serializer_class = WebhookTriggerDefinitionSerializer

    def get_queryset(self) -> QuerySet[WebhookTriggerDefinition]:
        return webhook_trigger_definition_list(include_deleted=self.action == "retrieve")
