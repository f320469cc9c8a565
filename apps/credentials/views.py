"""``/api/v1/integration_credentials/``: create or update, list, delete. Secrets are never returned."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.query import IdQuerySerializer
from apps.core.viewsets import QueryStringViewSet
from apps.credentials import services
from apps.credentials.models import IntegrationCredential
from apps.credentials.selectors import credential_list_for_user
from apps.credentials.serializers import CredentialInputSerializer, CredentialSerializer


@extend_schema_view(
    list=extend_schema(summary="Read all integration credentials"),
    create=extend_schema(
        summary="Create or update an integration credential",
        description="Keyed by organization, integration and owner (the caller): a second call replaces the secret.",
        request=CredentialInputSerializer,
    ),
    destroy=extend_schema(
        summary="Remove an integration credential", parameters=[IdQuerySerializer], responses=CredentialSerializer
    ),
)
class IntegrationCredentialViewSet(mixins.ListModelMixin, QueryStringViewSet):
    serializer_class = CredentialSerializer

    def get_queryset(self) -> QuerySet[IntegrationCredential]:
        return credential_list_for_user(user=self.user)

    def create(self, request: Request) -> Response:
        serializer = CredentialInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        credential = services.credential_upsert(user=self.user, **serializer.validated_data)
        return Response(CredentialSerializer(credential).data)

    def destroy(self, request: Request) -> Response:
        credential = self.get_object()
        body = CredentialSerializer(credential).data
        services.credential_delete(credential=credential)
        return Response(body)
