"""The admin keeps tenants apart, and keeps records read-only.

Personas: ``superuser`` (a member of no organization), ``staff_a`` (staff, a member of the owner's organization A)
and ``staff_b`` (staff, a member of the outsider's organization B), both with the same model permissions. Staff who
are not superusers see, filter on and act on only their organizations' objects; another organization's object
answers 404 like an unknown id, and approving it is refused like approving an unknown run.
"""

import uuid

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client

from apps.accounts.models import Membership, Organization, User
from apps.core.admin import ReadOnlyAdmin
from apps.credentials.services.credentials import credential_upsert
from apps.flows.models import FlowRequest, FlowVersion
from apps.integrations.models import Notification
from apps.runs.models import ApprovalDecision, FlowResult, FlowRun, TaskRun
from apps.webhooks.models import TriggerRun
from tests.factories import (
    FlowResultFactory,
    FlowRunFactory,
    WebhookTriggerOperationFactory,
    shared_organization,
    staff_user,
)
from tests.runs.flows import waiting_run

pytestmark = pytest.mark.django_db

RUNS = "/admin/runs/flowrun/"
PERMISSIONS = (
    "view_flowrun",
    "approve_flowrun",
    "view_flowresult",
    "view_taskrun",
    "view_approvaldecision",
    "view_flow",
    "add_flow",
    "change_flow",
    "delete_flow",
    "view_flowrequest",
    "view_flowversion",
    "view_webhooktriggeroperation",
    "change_webhooktriggeroperation",
    "view_triggerrun",
    "view_integrationcredential",
    "delete_integrationcredential",
    "view_notification",
    "view_organization",
    "change_organization",
    "view_user",
    "change_user",
)


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def listed(client, url):
    response = client.get(url)
    assert response.status_code == 200
    return set(response.context["cl"].result_list)


def bulk(client, action, flow_runs, **extra):
    return client.post(
        RUNS,
        {"action": action, "_selected_action": [str(flow_run.id) for flow_run in flow_runs], "index": 0, **extra},
        follow=True,
    )


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root@example.com", "secret-password")


@pytest.fixture
def staff_a(organization):
    # Approvers: the admin's Approve button needs the role as the API's approve does.
    return staff_user("staff-a@example.com", *PERMISSIONS, organizations=[organization], role=Membership.Role.APPROVER)


@pytest.fixture
def staff_b(outsider_organization):
    return staff_user(
        "staff-b@example.com", *PERMISSIONS, organizations=[outsider_organization], role=Membership.Role.APPROVER
    )


@pytest.fixture
def superuser_client(superuser):
    return logged_in(superuser)


@pytest.fixture
def client_a(staff_a):
    return logged_in(staff_a)


@pytest.fixture
def client_b(staff_b):
    return logged_in(staff_b)


@pytest.fixture
def objects_of_a(owner, organization):
    """One object of every organization-owned kind the admin shows, in organization A, by admin URL prefix."""
    flow_run = FlowRunFactory(organization=organization)
    operation = WebhookTriggerOperationFactory(organization=organization)
    return {
        "/admin/runs/flowrun/": flow_run,
        "/admin/runs/flowresult/": FlowResultFactory(organization=organization, flow_run=flow_run),
        "/admin/runs/taskrun/": flow_run.task_runs.first(),
        "/admin/runs/approvaldecision/": ApprovalDecision.objects.create(
            flow_run=flow_run, decision=ApprovalDecision.Decision.APPROVED, decided_by=owner.email
        ),
        "/admin/flows/flow/": flow_run.flow,
        "/admin/flows/flowrequest/": flow_run.flow_request,
        "/admin/flows/flowversion/": flow_run.flow_version,
        "/admin/webhooks/webhooktriggeroperation/": operation,
        "/admin/webhooks/triggerrun/": TriggerRun.objects.create(
            organization=organization, operation=operation, delivery_id="d-1", payload={}
        ),
        "/admin/credentials/integrationcredential/": credential_upsert(
            user=owner, integration_short_name="trello", api_key="trello-key"
        ),
        "/admin/integrations/notification/": Notification.objects.create(
            organization=organization, recipient="ann@example.com", message="hi", idempotency_key="n-1"
        ),
        "/admin/accounts/organization/": organization,
    }


# --- Lists and pages of every organization-owned kind ----------------------------------------------------------


def test_each_list_shows_staff_their_organizations_objects_only(objects_of_a, client_a, client_b, superuser_client):
    for prefix, obj in objects_of_a.items():
        query = "?approval_status=all" if prefix == RUNS else ""
        assert obj in listed(client_a, prefix + query), prefix
        assert obj not in listed(client_b, prefix + query), prefix
        assert obj in listed(superuser_client, prefix + query), prefix


def test_another_organizations_object_page_answers_404_like_an_unknown_id(
    objects_of_a, client_a, client_b, superuser_client
):
    for prefix, obj in objects_of_a.items():
        page = f"{prefix}{obj.pk}/change/"
        assert client_a.get(page).status_code == 200, prefix
        assert superuser_client.get(page).status_code == 200, prefix
        assert client_b.get(page).status_code == 404, prefix
        assert client_b.get(f"{prefix}{obj.pk}/history/").status_code == 404, prefix
        assert client_b.post(page, {"name": "taken over"}).status_code in (403, 404), prefix
        assert client_b.post(f"{prefix}{obj.pk}/delete/", {"post": "yes"}).status_code in (403, 404), prefix
        assert client_a.get(f"{prefix}{uuid.uuid4()}/change/").status_code == 404, prefix
    for obj in objects_of_a.values():
        assert type(obj).objects.filter(pk=obj.pk).exists()
    assert Organization.objects.get(pk=objects_of_a["/admin/accounts/organization/"].pk).name != "taken over"


def test_the_organization_filter_offers_only_the_users_organizations(
    staff_a, client_a, superuser_client, organization, outsider_organization
):
    team = shared_organization(staff_a)
    FlowRunFactory(organization=organization)

    def offered(client):
        response = client.get(RUNS)
        (spec,) = [spec for spec in response.context["cl"].filter_specs if spec.title == "organization"]
        return {name for _, name in spec.lookup_choices}, response.content.decode()

    choices, content = offered(client_a)
    assert choices == {organization.name, team.name}
    assert outsider_organization.name not in content
    assert outsider_organization.name in offered(superuser_client)[0]
    # Asking for another organization's objects by the filter's parameter finds nothing.
    foreign = client_a.get(f"{RUNS}?approval_status=all&organization__id__exact={outsider_organization.id}")
    assert list(foreign.context["cl"].result_list) == []


# --- Approving another organization's runs ------------------------------------------------------------------------


def test_staff_cannot_approve_or_reject_another_organizations_run(client_b, owner):
    flow_run = waiting_run(owner)

    approve = client_b.post(f"{RUNS}{flow_run.id}/approve/", {"comment": "not mine"}, follow=True)
    reject = client_b.post(f"{RUNS}{flow_run.id}/reject/", follow=True)

    for response in (approve, reject):
        assert response.status_code == 200
        assert f"No flow run has the id \u201c{flow_run.id}\u201d." in messages_of(response)
    flow_run.refresh_from_db()
    assert flow_run.approval_status == FlowRun.ApprovalStatus.PENDING
    assert not flow_run.approval_decisions.exists()


def test_bulk_approve_refuses_another_organizations_runs_and_decides_the_users_own(client_b, owner, outsider):
    theirs, own = waiting_run(owner), waiting_run(outsider)

    response = bulk(client_b, "approve_selected", [theirs, own])

    shown = messages_of(response)
    assert "1 of the selected runs was not found; nothing was done to it." in shown
    assert any(message.startswith("Approved 1 run:") and str(own.id) in message for message in shown), shown
    theirs.refresh_from_db()
    own.refresh_from_db()
    assert theirs.approval_status == FlowRun.ApprovalStatus.PENDING
    assert not theirs.approval_decisions.exists()
    assert own.approval_status == FlowRun.ApprovalStatus.APPROVED


def test_a_decision_on_every_run_of_the_list_takes_only_the_users_runs(client_b, owner, outsider):
    theirs, own = waiting_run(owner), waiting_run(outsider)

    bulk(client_b, "reject_selected", [own], select_across="1")

    theirs.refresh_from_db()
    own.refresh_from_db()
    assert theirs.approval_status == FlowRun.ApprovalStatus.PENDING
    assert own.approval_status == FlowRun.ApprovalStatus.REJECTED


def test_superusers_decide_on_every_organizations_runs(superuser_client, superuser, owner):
    flow_run = waiting_run(owner)

    superuser_client.post(f"{RUNS}{flow_run.id}/approve/")

    flow_run.refresh_from_db()
    assert (flow_run.approval_status, flow_run.approved_by) == (FlowRun.ApprovalStatus.APPROVED, superuser.email)


def test_an_invalid_id_in_a_selection_is_refused_not_a_500(client_a, owner):
    flow_run = waiting_run(owner)

    response = client_a.post(
        RUNS, {"action": "approve_selected", "_selected_action": [str(flow_run.id), "not-an-id"], "index": 0}
    )

    assert response.status_code == 302
    assert "The selection holds an invalid id; nothing was done." in messages_of(client_a.get(RUNS))
    flow_run.refresh_from_db()
    assert flow_run.approval_status == FlowRun.ApprovalStatus.PENDING


# --- Records are read-only --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model", [FlowRequest, FlowVersion, FlowRun, FlowResult, TaskRun, ApprovalDecision, TriggerRun, Notification]
)
def test_records_are_read_only_for_everyone(model, objects_of_a, superuser, superuser_client):
    model_admin = admin.site._registry[model]
    (obj,) = [obj for obj in objects_of_a.values() if isinstance(obj, model)]
    prefix = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    request = superuser_client.get(prefix).wsgi_request

    assert isinstance(model_admin, ReadOnlyAdmin)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, obj)
    assert not model_admin.has_delete_permission(request, obj)
    assert superuser_client.get(f"{prefix}add/").status_code == 403
    assert superuser_client.post(f"{prefix}{obj.pk}/change/", {}).status_code == 403
    assert superuser_client.post(f"{prefix}{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    page = superuser_client.get(f"{prefix}{obj.pk}/change/")
    assert page.status_code == 200
    assert not page.context["adminform"].form.fields  # every field shown read-only
    assert model.objects.filter(pk=obj.pk).exists()


# --- Users and organizations ------------------------------------------------------------------------------------


def test_staff_see_only_themselves_and_their_organizations_members(client_b, staff_b, owner, outsider):
    assert listed(client_b, "/admin/accounts/user/") == {staff_b, outsider}
    assert client_b.get(f"/admin/accounts/user/{owner.id}/change/").status_code == 404
    assert client_b.get("/admin/accounts/user/add/").status_code == 403


def test_staff_cannot_grant_themselves_privileges(client_b, staff_b):
    response = client_b.post(
        f"/admin/accounts/user/{staff_b.id}/change/",
        {"email": staff_b.email, "full_name": "B", "auth0_id": "", "is_active": "on", "is_superuser": "on"},
    )

    assert response.status_code == 302
    staff_b.refresh_from_db()
    assert staff_b.full_name == "B"
    assert not staff_b.is_superuser


def test_staff_may_not_add_organizations_even_with_the_permission(staff_a, client_a, superuser_client):
    staff_a.user_permissions.add(Permission.objects.get(codename="add_organization"))

    assert client_a.get("/admin/accounts/organization/add/").status_code == 403
    assert superuser_client.get("/admin/accounts/organization/add/").status_code == 200
