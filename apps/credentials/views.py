"""``/api/v1/integration_credentials/``: create or update, list, delete. Secrets are never returned."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.query import IdQuerySerializer, parse_query
from apps.core.viewsets import QueryStringViewSet
from apps.credentials.models import IntegrationCredential
from apps.credentials.selectors import credential_list_for_user
from apps.credentials.serializers import (
    AuthorizeUrlQuerySerializer,
    AuthorizeUrlSerializer,
    CredentialInputSerializer,
    CredentialSerializer,
    OAuth2CodeSerializer,
)
from apps.credentials.services import credentials as services
from apps.credentials.services import oauth2


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
        data = dict(serializer.validated_data)
        data["organization"] = self.target_organization(data.get("organization"))
        credential = services.credential_upsert(user=self.user, **data)
        return Response(CredentialSerializer(credential).data)

    @extend_schema(
        summary="Read the OAuth2 authorize URL",
        description="The provider's authorize URL with client id, redirect URI, scopes, an encrypted, expiring, "
        "single-use state and a PKCE challenge; nothing is stored. Send the user there; post the code the provider "
        "returns to oauth2/code.",
        parameters=[AuthorizeUrlQuerySerializer],
        responses=AuthorizeUrlSerializer,
    )
    @action(detail=False, methods=["get"], url_path="oauth2/authorize_url")
    def oauth2_authorize_url(self, request: Request) -> Response:
        query = parse_query(AuthorizeUrlQuerySerializer, request)
        url = oauth2.oauth2_authorize_url(
            user=self.user,
            integration_short_name=query["integration_short_name"],
            organization=self.target_organization(query.get("organization")),
        )
        return Response(AuthorizeUrlSerializer({"authorize_url": url}).data)

    @extend_schema(
        summary="Send the OAuth2 code",
        description="Checks the state (the caller's, for this integration, not expired, not presented before: the "
        "first attempt spends it, even one the provider refuses), exchanges the code and stores the tokens encrypted "
        "as the caller's credential for the integration.",
        request=OAuth2CodeSerializer,
        responses=CredentialSerializer,
    )
    @action(detail=False, methods=["post"], url_path="oauth2/code")
    def oauth2_code(self, request: Request) -> Response:
        serializer = OAuth2CodeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        credential = oauth2.oauth2_code_exchange(user=self.user, **serializer.validated_data)
        return Response(CredentialSerializer(credential).data)

    def destroy(self, request: Request) -> Response:
        credential = self.get_object()
        body = CredentialSerializer(credential).data
        services.credential_delete(user=self.user, credential=credential)
        return Response(body)
