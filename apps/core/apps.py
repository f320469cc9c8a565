import re
import warnings

from django.apps import AppConfig
from django.conf import settings
from django.core.signals import request_finished


class CoreConfig(AppConfig):
    name = "apps.core"
    verbose_name = "Core"

    def ready(self) -> None:
        if settings.SERVESTATIC_USE_FINDERS:
            # Development serves static files from the apps' folders, so the collected directory is expected to be
            # missing; ServeStatic would warn about it once per web process at every start. Production collects
            # them (the Dockerfile) and serves only those, and there a missing directory is still reported.
            message = f"No directory at: {re.escape(str(settings.STATIC_ROOT))}"
            warnings.filterwarnings("ignore", message=message, category=UserWarning)

        # Infrastructure, not domain logic: a request's id must outlive the middleware (Django logs 4xx and 5xx
        # answers after it) and end when the response is closed.
        from apps.core.request_id import request_id_end

        request_finished.connect(request_id_end, dispatch_uid="neena.request_id_end")
