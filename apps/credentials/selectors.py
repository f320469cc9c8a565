"""Credential queries, scoped to the caller's organizations."""

from django.db.models import QuerySet

from apps.accounts.models import User
from apps.accounts.selectors import organization_ids_for_user
from apps.credentials.models import IntegrationCredential

NEWEST_FIRST = ("-created_date", "-id")


def credential_list_for_user(*, user: User) -> QuerySet[IntegrationCredential]:
    return (
        IntegrationCredential.objects.filter(organization_id__in=organization_ids_for_user(user=user))
        .select_related("integration", "owner")
        .order_by(*NEWEST_FIRST)
    )
