from django.apps import AppConfig


class CredentialsConfig(AppConfig):
    name = "apps.credentials"
    verbose_name = "Credentials"

    def ready(self) -> None:
        from apps.credentials import checks  # noqa: F401  (registers the encryption-key system check)
