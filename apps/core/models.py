"""Base models every app shares: UUID keys, audit fields and organization ownership."""

import uuid

from django.db import models


class BaseModel(models.Model):
    """A row with a UUID key and the audit fields the API reports on every resource.

    The ``*_by_email`` fields are written by services (they know the acting user); the dates by Django.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_date = models.DateTimeField(auto_now_add=True)
    modified_date = models.DateTimeField(auto_now=True)
    created_by_email = models.CharField(max_length=254, blank=True, default="")
    modified_by_email = models.CharField(max_length=254, blank=True, default="")

    class Meta:
        abstract = True


class OwnedModel(BaseModel):
    """A row that belongs to one organization; every query for it is scoped to the caller's organizations."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True
