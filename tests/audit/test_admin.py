"""The audit log in the admin: read-only for everyone, and only the staff user's organizations' events."""

import pytest
from django.test import Client

from apps.audit.models import AuditEvent
from tests.factories import personal_organization, staff_user
from tests.runs.flows import make_flow, step

pytestmark = pytest.mark.django_db

EVENTS = "/admin/audit/auditevent/"


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def event(owner, organization):
    flow = make_flow(owner, [step(0, "Format Text", template="x")], [])
    return AuditEvent.objects.get(object_id=str(flow.latest_version_id))


def test_staff_see_their_organizations_events_read_only(organization, event):
    client = logged_in(staff_user("auditor@example.com", "view_auditevent", organizations=[organization]))

    listing = client.get(EVENTS)
    page = client.get(f"{EVENTS}{event.id}/change/")

    assert listing.status_code == 200 and "flow_version.created" in listing.content.decode()
    assert page.status_code == 200
    assert not page.context["adminform"].form.fields  # every field shown read-only
    assert client.get(f"{EVENTS}add/").status_code == 403
    assert client.post(f"{EVENTS}{event.id}/delete/").status_code == 403


def test_another_organizations_staff_get_404(outsider, event):
    client = logged_in(
        staff_user("other@example.com", "view_auditevent", organizations=[personal_organization(outsider)])
    )

    assert client.get(f"{EVENTS}{event.id}/change/").status_code == 404
    assert "flow_version.created" not in client.get(EVENTS).content.decode()


def test_not_even_a_superuser_changes_or_deletes_an_event(event):
    from apps.accounts.models import User

    client = logged_in(User.objects.create_superuser("root@example.com", "secret-password"))

    assert client.get(f"{EVENTS}{event.id}/change/").status_code == 200
    assert client.post(f"{EVENTS}{event.id}/delete/").status_code == 403
    assert AuditEvent.objects.filter(id=event.id).exists()
