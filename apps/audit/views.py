"""``/api/v1/audit_events/all``: an organization's audit log, for its admins and owners."""

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins

from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_event_list_for_user
from apps.audit.serializers import AuditEventSerializer
from apps.core.viewsets import QueryStringViewSet


@extend_schema_view(
    list=extend_schema(
        summary="Read the audit log",
        description="Who changed what, when, and how it was before and after: approval policies, memberships and "
        "roles, integration credentials (metadata only, never a secret), webhook secret rotations, approval "
        "decisions and flow versions, in the organizations where the caller is an admin or an owner (elsewhere "
        "nothing is listed). Newest first.",
    )
)
class AuditEventViewSet(mixins.ListModelMixin, QueryStringViewSet):
    serializer_class = AuditEventSerializer

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return audit_event_list_for_user(user=self.user)
