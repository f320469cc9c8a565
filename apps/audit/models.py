"""The audit log: who changed what in an organization, when, and how it was before and after."""

import uuid
from typing import Any, ClassVar, NoReturn

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class AppendOnlyError(Exception):
    """Raised on any attempt to change or delete an audit event through the ORM: the log only grows."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    """Refuses bulk changes and deletes: ``AuditEvent.objects.filter(...).update()`` or ``.delete()`` raise.

    Deleting the organization (or the actor) still works: Django's cascade goes through the base manager, not this
    queryset, and an organization that is gone has no log to keep.
    """

    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit events are never changed.")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("Audit events are never deleted.")

    def bulk_update(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit events are never changed.")

    def update_or_create(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit events are never changed.")


class AuditEvent(models.Model):
    """One change in an organization, recorded in the same transaction as the change (``audit_event_record``).

    ``actor`` is the user who made it (null for the system, e.g. an approval timeout, or once the user is deleted);
    ``actor_email`` keeps who it was. ``action`` is ``<object type>.<verb>`` (``credential.created``,
    ``run.approved``...); ``object_type`` and ``object_id`` name what changed; ``before`` and ``after`` are its
    recorded fields (null when it did not exist before or after), never a secret.

    Append-only: saving an existing event, deleting one, and the queryset's bulk ``update`` / ``delete`` raise
    ``AppendOnlyError``; the admin shows events read-only.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_email = models.CharField(max_length=254, blank=True, default="")
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    # Dates, durations and ids are stored as the API writes them (ISO 8601, strings).
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_date = models.DateTimeField(auto_now_add=True)

    objects: ClassVar[models.Manager["AuditEvent"]] = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_date", "-id"]
        indexes = [models.Index(fields=["organization", "-created_date"], name="audit_event_org_created")]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type} {self.object_id} by {self.actor_email or 'system'}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Audit events are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit events are never deleted.")
