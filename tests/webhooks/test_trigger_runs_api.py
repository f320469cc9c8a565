"""``/api/v1/webhook_trigger_runs/``: read one (``?id=``) or all (``/all``, optionally of one operation), scoped to
the caller's organizations; outsiders get 404 on every webhook endpoint that takes an id; lists have fixed query
counts."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.webhooks.models import TriggerRun
from tests.factories import WebhookTriggerOperationFactory, shared_organization

pytestmark = pytest.mark.django_db


def make_trigger_run(operation, **fields):
    values = {
        "organization_id": operation.organization_id,
        "operation": operation,
        "delivery_id": str(uuid.uuid4()),
        "payload": {"ticket": {"id": 1}},
        **fields,
    }
    return TriggerRun.objects.create(**values)


@pytest.fixture
def operation(organization):
    return WebhookTriggerOperationFactory(organization=organization, status="active")


def test_read_a_trigger_run(api, operation):
    trigger_run = make_trigger_run(
        operation, status="failed", reason="The required event field 'ticket_id' ($.ticket.id) is not in the payload."
    )

    response = api.get(f"/api/v1/webhook_trigger_runs/?id={trigger_run.id}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(trigger_run.id)
    assert body["operation"] == str(operation.id)
    assert body["status"] == "failed"
    assert "ticket_id" in body["reason"]
    assert body["payload"] == {"ticket": {"id": 1}}
    assert body["event_fields"] == {}
    assert body["flow_request"] is None
    assert body["flow_run"] is None
    assert body["organization"] == str(operation.organization_id)
    assert {"delivery_id", "created_date", "modified_date", "created_by_email", "modified_by_email"} <= set(body)


def test_list_is_newest_first_and_pages(api, operation):
    runs = [make_trigger_run(operation) for _ in range(3)]

    everything = api.get("/api/v1/webhook_trigger_runs/all").json()
    page = api.get("/api/v1/webhook_trigger_runs/all?skip=1&limit=1").json()

    assert [item["id"] for item in everything] == [str(run.id) for run in reversed(runs)]
    assert [item["id"] for item in page] == [str(runs[1].id)]


def test_list_of_one_operation(api, organization, operation):
    other = WebhookTriggerOperationFactory(organization=organization)
    mine = make_trigger_run(operation)
    make_trigger_run(other)

    listed = api.get(f"/api/v1/webhook_trigger_runs/all?operation_id={operation.id}").json()

    assert [item["id"] for item in listed] == [str(mine.id)]


@pytest.mark.parametrize(
    ("query", "location"),
    [("operation_id=nope", ["query", "operation_id"]), ("limit=0", ["query", "limit"]), ("skip=-1", ["query", "skip"])],
)
def test_invalid_list_query_is_422(api, query, location):
    response = api.get(f"/api/v1/webhook_trigger_runs/all?{query}")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == location


def test_list_of_an_unknown_operation_is_404(api):
    assert api.get(f"/api/v1/webhook_trigger_runs/all?operation_id={uuid.uuid4()}").status_code == 404


def test_teammates_see_the_organizations_trigger_runs(teammate_api, operation):
    trigger_run = make_trigger_run(operation)

    assert teammate_api.get(f"/api/v1/webhook_trigger_runs/?id={trigger_run.id}").status_code == 200
    assert len(teammate_api.get("/api/v1/webhook_trigger_runs/all").json()) == 1


def test_a_second_organization_of_the_user_is_listed_too(api, owner, operation):
    other = WebhookTriggerOperationFactory(organization=shared_organization(owner))
    make_trigger_run(operation)
    make_trigger_run(other)

    assert len(api.get("/api/v1/webhook_trigger_runs/all").json()) == 2


def test_reading_needs_a_token(operation, client):
    trigger_run = make_trigger_run(operation)

    assert client.get(f"/api/v1/webhook_trigger_runs/?id={trigger_run.id}").status_code == 401
    assert client.get("/api/v1/webhook_trigger_runs/all").status_code == 401


# --- Outsiders ------------------------------------------------------------------------------------------------------


def test_outsider_gets_404_on_every_webhook_endpoint_taking_an_id(api, outsider_api, outsider_organization, operation):
    trigger_run = make_trigger_run(operation)
    update = {"id": str(operation.id), "name": "mine now", "template_body": "Reply to <{ticket_id}>."}
    requests = [
        ("get", f"/api/v1/webhook_trigger_operations/?id={operation.id}", None),
        ("put", "/api/v1/webhook_trigger_operations/", update),
        ("post", f"/api/v1/webhook_trigger_operations/rotate_secret?id={operation.id}", None),
        ("delete", f"/api/v1/webhook_trigger_operations/?id={operation.id}", None),
        ("get", f"/api/v1/webhook_trigger_runs/?id={trigger_run.id}", None),
        ("get", f"/api/v1/webhook_trigger_runs/all?operation_id={operation.id}", None),
    ]
    secret_before = operation.signing_secret_ciphertext

    for method, url, body in requests:
        response = getattr(outsider_api, method)(url, body, format="json")
        assert response.status_code == 404, f"{method.upper()} {url} answered {response.status_code}"

    operation.refresh_from_db()
    assert operation.name != "mine now"
    assert operation.signing_secret_ciphertext == secret_before
    assert api.get(f"/api/v1/webhook_trigger_runs/?id={trigger_run.id}").status_code == 200


def test_outsider_lists_are_empty(api, outsider_api, outsider_organization, operation):
    make_trigger_run(operation)

    assert api.get("/api/v1/webhook_trigger_runs/all").json() != []
    assert outsider_api.get("/api/v1/webhook_trigger_runs/all").json() == []
    assert outsider_api.get("/api/v1/webhook_trigger_operations/all").json() == []


# --- Query counts ---------------------------------------------------------------------------------------------------


def _count(api, url):
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url)
    assert response.status_code == 200, url
    return len(queries)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # Authentication (the token joined with its user), then the page.
        ("/api/v1/webhook_trigger_runs/all", 2),
        # ... and the check that the operation is visible.
        ("/api/v1/webhook_trigger_runs/all?operation_id={operation}", 3),
        ("/api/v1/webhook_trigger_operations/all", 2),
    ],
)
def test_list_query_counts_are_fixed(api, organization, operation, url, expected):
    url = url.format(operation=operation.id)
    make_trigger_run(operation)
    first = _count(api, url)
    for _ in range(5):
        make_trigger_run(operation)
        WebhookTriggerOperationFactory(organization=organization)

    assert _count(api, url) == first == expected


def test_detail_query_counts(api, operation):
    trigger_run = make_trigger_run(operation)

    assert _count(api, f"/api/v1/webhook_trigger_runs/?id={trigger_run.id}") == 2
    assert _count(api, f"/api/v1/webhook_trigger_operations/?id={operation.id}") == 2
