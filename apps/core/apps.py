import re
import warnings

from django.apps import AppConfig
from django.conf import settings


class CoreConfig(AppConfig):
    name = "apps.core"
    verbose_name = "Core"

    def ready(self) -> None:
        if settings.WHITENOISE_USE_FINDERS:
            # Development serves static files from the apps' folders, so the collected directory is expected to be
            # missing; whitenoise would warn about it once per web process at every start. Production collects
            # them (the Dockerfile) and serves only those, and there a missing directory is still reported.
            message = f"No directory at: {re.escape(str(settings.STATIC_ROOT))}"
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
