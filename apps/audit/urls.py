from apps.audit.views import AuditEventViewSet

routes = [("audit_events", AuditEventViewSet, "audit-events")]
