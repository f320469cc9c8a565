from apps.credentials.views import IntegrationCredentialViewSet

routes = [("integration_credentials", IntegrationCredentialViewSet, "integration-credentials")]
