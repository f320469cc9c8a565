from django.apps import AppConfig
from django.core.signals import request_finished


class CoreConfig(AppConfig):
    name = "apps.core"
    verbose_name = "Core"

    def ready(self) -> None:
        # Infrastructure, not domain logic: a request's id must outlive the middleware (Django logs 4xx and 5xx
        # answers after it) and end when the response is closed.
        from apps.core.request_id import request_id_end

        request_finished.connect(request_id_end, dispatch_uid="neena.request_id_end")
