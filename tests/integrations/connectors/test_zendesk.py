"""The ``zendesk`` connector against a fake Zendesk on 127.0.0.1: the exact requests the real API expects, the outputs,
the error mapping, and one step through the engine."""

import base64
import dataclasses

import pytest
from django.test import override_settings

from apps.credentials.services.credentials import credential_upsert
from apps.integrations.connectors import zendesk as connector
from apps.integrations.connectors.zendesk import add_internal_note, add_public_reply, get_ticket, update_ticket
from apps.integrations.execution import TaskError, TransientTaskError
from apps.runs.models import FlowRun, TaskRun
from tests.fakes.zendesk import AGENT_EMAIL, API_TOKEN, SUBDOMAIN, FakeZendesk
from tests.integrations.connectors.steps import credential_context, run_one_step

BASIC = "Basic " + base64.b64encode(f"{AGENT_EMAIL}/token:{API_TOKEN}".encode()).decode()
CONTEXT = credential_context({"api_key": API_TOKEN}, {"email": AGENT_EMAIL, "subdomain": SUBDOMAIN})


@pytest.fixture
def zendesk():
    fake = FakeZendesk()
    try:
        with override_settings(NEENA_ZENDESK_BASE_URL=fake.base_url):
            yield fake
    finally:
        fake.stop()


@pytest.fixture
def ticket(zendesk):
    return zendesk.add_ticket(
        subject="Charged twice",
        description="My card was charged twice for March.",
        requester_email="ann@example.com",
        requester_name="Ann Smith",
        tags=["billing"],
    )


# --- Tasks ------------------------------------------------------------------------------------------------------


def test_get_ticket_sideloads_the_requester_for_the_email(zendesk, ticket):
    outputs = get_ticket(CONTEXT, ticket_id=ticket["id"])

    assert outputs == {
        "ticket_id": ticket["id"],
        "subject": "Charged twice",
        "description": "My card was charged twice for March.",
        "status": "new",
        "requester_email": "ann@example.com",
        "tags": ["billing"],
    }
    (received,) = zendesk.requests
    assert (received.method, received.path, received.query) == (
        "GET",
        f"/api/v2/tickets/{ticket['id']}.json",
        {"include": "users"},
    )
    assert received.headers["Authorization"] == BASIC
    assert received.body is None


def test_get_ticket_of_a_requester_without_email(zendesk):
    ticket = zendesk.add_ticket(requester_email=None, requester_name="Caller")

    assert get_ticket(CONTEXT, ticket_id=ticket["id"])["requester_email"] == ""


@pytest.mark.parametrize(("task", "public"), [(add_public_reply, True), (add_internal_note, False)])
def test_comments_are_a_ticket_update_answered_with_its_audit(zendesk, ticket, task, public):
    outputs = task(CONTEXT, ticket_id=ticket["id"], body="We refunded the second charge.")

    (received,) = zendesk.requests
    assert (received.method, received.path, received.query) == ("PUT", f"/api/v2/tickets/{ticket['id']}.json", {})
    assert received.headers["Authorization"] == BASIC
    assert received.headers["Content-Type"] == "application/json"
    assert received.body == {"ticket": {"comment": {"body": "We refunded the second charge.", "public": public}}}
    audit = zendesk.audits[ticket["id"]][-1]
    assert outputs == {"ticket_id": ticket["id"], "audit_id": audit["id"]}
    comment = zendesk.comments[ticket["id"]][-1]
    assert (comment["body"], comment["public"], comment["audit_id"]) == (
        "We refunded the second charge.",
        public,
        audit["id"],
    )


def test_an_empty_comment_is_refused_before_calling(zendesk, ticket):
    with pytest.raises(TaskError, match="non-empty body"):
        add_public_reply(CONTEXT, ticket_id=ticket["id"], body="  ")
    assert zendesk.requests == []


def test_update_ticket_sets_status_and_replaces_the_tags(zendesk, ticket):
    outputs = update_ticket(CONTEXT, ticket_id=ticket["id"], status="Solved", tags=["refund", "vip"])

    (received,) = zendesk.requests
    assert (received.method, received.path) == ("PUT", f"/api/v2/tickets/{ticket['id']}.json")
    assert received.headers["Authorization"] == BASIC
    assert received.body == {"ticket": {"status": "solved", "tags": ["refund", "vip"]}}
    assert outputs == {"ticket_id": ticket["id"], "status": "solved", "tags": ["refund", "vip"]}
    assert zendesk.tickets[ticket["id"]]["tags"] == ["refund", "vip"]  # "billing" is gone: tags replace


def test_update_ticket_sends_only_what_is_given(zendesk, ticket):
    assert update_ticket(CONTEXT, ticket_id=ticket["id"], status="pending") == {
        "ticket_id": ticket["id"],
        "status": "pending",
        "tags": ["billing"],
    }
    assert update_ticket(CONTEXT, ticket_id=ticket["id"], tags=["urgent"], status="")["tags"] == ["urgent"]
    assert [received.body for received in zendesk.requests] == [
        {"ticket": {"status": "pending"}},
        {"ticket": {"tags": ["urgent"]}},
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [({}, "needs a status or tags"), ({"tags": []}, "needs a status or tags"), ({"status": "done"}, "not a Zendesk")],
)
def test_update_ticket_refuses_nothing_to_do_and_unknown_statuses(zendesk, ticket, changes, message):
    with pytest.raises(TaskError, match=message):
        update_ticket(CONTEXT, ticket_id=ticket["id"], **changes)
    assert zendesk.requests == []


# --- The account ------------------------------------------------------------------------------------------------


def test_the_base_url_comes_from_the_subdomain_when_the_setting_is_empty(monkeypatch):
    calls = []

    def fake_request(service, method, url, **kwargs):
        calls.append((method, url, kwargs["auth"], kwargs["trusted"]))
        raise TaskError("stop here")

    monkeypatch.setattr(connector, "request", fake_request)
    context = credential_context({"api_key": "t0k"}, {"email": "a@acme.com", "subdomain": "Acme.zendesk.com"})
    with override_settings(NEENA_ZENDESK_BASE_URL=""), pytest.raises(TaskError, match="stop here"):
        get_ticket(context, ticket_id=5)

    # The user's subdomain is not trusted: the egress guard lets it reach public addresses only.
    assert calls == [("GET", "https://acme.zendesk.com/api/v2/tickets/5.json", ("a@acme.com/token", "t0k"), False)]


@pytest.mark.parametrize(
    ("secrets", "config", "message"),
    [
        ({}, {"email": "a@acme.com", "subdomain": "acme"}, "no API token"),
        ({"api_key": "t"}, {"subdomain": "acme"}, "no 'email'"),
        ({"api_key": "t"}, {"email": "a@acme.com", "subdomain": "evil.com/x?"}, "not a Zendesk subdomain"),
        ({"api_key": "t"}, {"email": "a@acme.com"}, "No base URL"),
    ],
)
def test_an_incomplete_credential_is_refused_before_calling(secrets, config, message):
    with override_settings(NEENA_ZENDESK_BASE_URL=""), pytest.raises(TaskError, match=message):
        get_ticket(credential_context(secrets, config), ticket_id=5)


def test_a_missing_credential_is_a_task_error(zendesk):
    context = dataclasses.replace(CONTEXT, credential=None)
    with pytest.raises(TaskError, match="needs a credential"):
        get_ticket(context, ticket_id=1)
    assert zendesk.requests == []


# --- Errors -----------------------------------------------------------------------------------------------------


def test_a_wrong_token_is_refused_with_zendesks_message(zendesk, ticket):
    context = credential_context({"api_key": "wrong"}, {"email": AGENT_EMAIL})
    with pytest.raises(TaskError, match=r"\(401\): Couldn't authenticate you") as raised:
        get_ticket(context, ticket_id=ticket["id"])
    assert not isinstance(raised.value, TransientTaskError)


def test_an_unknown_ticket_is_a_task_error(zendesk):
    with pytest.raises(TaskError, match=r"\(404\): RecordNotFound") as raised:
        add_public_reply(CONTEXT, ticket_id=404, body="Hello")
    assert not isinstance(raised.value, TransientTaskError)


def test_a_refused_update_is_a_task_error(zendesk):
    ticket = zendesk.add_ticket(status="closed")
    with pytest.raises(TaskError, match=r"\(422\): RecordInvalid") as raised:
        update_ticket(CONTEXT, ticket_id=ticket["id"], status="open")
    assert not isinstance(raised.value, TransientTaskError)


def test_rate_limits_are_transient_with_retry_after(zendesk, ticket):
    zendesk.fail_next(429, {"Retry-After": "7"})
    with pytest.raises(TransientTaskError, match="429") as raised:
        add_internal_note(CONTEXT, ticket_id=ticket["id"], body="Note")
    assert raised.value.retry_after == 7
    assert zendesk.comments[ticket["id"]][-1]["body"] != "Note"


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_transient(zendesk, ticket, status):
    zendesk.fail_next(status)
    with pytest.raises(TransientTaskError, match=str(status)) as raised:
        get_ticket(CONTEXT, ticket_id=ticket["id"])
    assert raised.value.retry_after is None


# --- Through the engine -----------------------------------------------------------------------------------------


@pytest.fixture
def _no_broker(monkeypatch):
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: None)


@pytest.mark.django_db
@pytest.mark.usefixtures("_no_broker")
def test_a_step_adds_a_note_with_the_stored_credential(owner, organization, zendesk, ticket):
    credential_upsert(
        user=owner,
        integration_short_name="zendesk",
        api_key=API_TOKEN,
        config={"email": AGENT_EMAIL, "subdomain": SUBDOMAIN},
    )

    task_run = run_one_step(
        owner, organization, "Add Zendesk Internal Note", ticket_id=str(ticket["id"]), body="Duplicate charge."
    )

    assert task_run.status == TaskRun.Status.COMPLETED, task_run.error
    audit = zendesk.audits[ticket["id"]][-1]
    assert task_run.result == {"ticket_id": ticket["id"], "audit_id": audit["id"]}
    (received,) = zendesk.requests
    assert received.headers["Authorization"] == BASIC
    assert received.body == {"ticket": {"comment": {"body": "Duplicate charge.", "public": False}}}
    assert FlowRun.objects.get(id=task_run.flow_run_id).status == FlowRun.Status.COMPLETED


@pytest.mark.django_db
@pytest.mark.usefixtures("_no_broker")
def test_a_step_without_a_credential_fails_naming_zendesk(owner, organization, zendesk, ticket):
    task_run = run_one_step(owner, organization, "Get Zendesk Ticket", ticket_id=ticket["id"])

    assert task_run.status == TaskRun.Status.FAILED
    assert "No Zendesk credential" in task_run.error
    assert zendesk.requests == []
