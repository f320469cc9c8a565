"""The ``gmail`` connector against a fake Gmail API on 127.0.0.1: the exact requests the real API expects (bearer token,
users/me paths, the raw RFC 2822 message decoded and checked), the outputs, the error mapping, and one step through
the engine."""

import base64
import dataclasses
import socket
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

import pytest
from django.test import override_settings

from apps.integrations.connectors.gmail import read_message, reply_to_message, search_messages, send_message
from apps.integrations.execution import TaskError, TransientTaskError
from apps.runs.models import FlowRun, TaskRun
from apps.runs.services import step_execution
from apps.runs.services.control import CALL_INTERRUPTED, run_retry, runs_sweep
from tests.fakes.gmail import ACCESS_TOKEN, FakeGmail
from tests.integrations.connectors.steps import credential_context, oauth2_credential_store, run_one_step

CONTEXT = dataclasses.replace(
    credential_context({"access_token": ACCESS_TOKEN, "refresh_token": "r"}),
    idempotency_key="7b0c2a8e-5d1f-4c36-9a61-0f2d7e3b9c14:1",
)
MESSAGE_ID = "<neena.7b0c2a8e-5d1f-4c36-9a61-0f2d7e3b9c14.1@neena.local>"
MESSAGES = "/gmail/v1/users/me/messages"


@pytest.fixture
def gmail():
    fake = FakeGmail()
    try:
        with override_settings(NEENA_GMAIL_BASE_URL=fake.base_url, NEENA_SYSTEM_EMAIL="system@neena.local"):
            yield fake
    finally:
        fake.stop()


def _raw(request: Any) -> Any:
    """The message a send request carried, decoded from base64url and parsed."""
    return message_from_bytes(base64.urlsafe_b64decode(request.body["raw"]), policy=default_policy)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- Send -----------------------------------------------------------------------------------------------------------


def test_send_message_posts_the_raw_message_with_bearer_token(gmail):
    outputs = send_message(
        CONTEXT,
        to="ann@example.com",
        subject="Your order shipped",
        body="It left the warehouse today.\nThanks!",
        cc="bob@example.com, Carol Jones <carol@example.com>",
    )

    (received,) = gmail.requests
    assert (received.method, received.path, received.query) == ("POST", f"{MESSAGES}/send", {})
    assert received.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert received.headers["content-type"] == "application/json"
    assert set(received.body) == {"raw"}
    message = _raw(received)
    assert message["To"] == "ann@example.com"
    assert message["Cc"] == "bob@example.com, Carol Jones <carol@example.com>"
    assert message["Subject"] == "Your order shipped"
    assert message["Message-ID"] == MESSAGE_ID
    assert message["In-Reply-To"] is None
    assert message.get_content_type() == "text/plain"
    assert message.get_content() == "It left the warehouse today.\r\nThanks!\r\n"
    (sent,) = gmail.messages.values()
    assert outputs == {"message_id": sent["id"], "thread_id": sent["threadId"]}


def test_send_message_encodes_non_ascii_and_keeps_one_message_id_per_attempt(gmail):
    send_message(CONTEXT, to="zoe@exämple.com", subject="Café ☕ ready", body="Grüße")
    send_message(CONTEXT, to="ann@example.com", subject="again", body="x")

    first, second = (_raw(request) for request in gmail.requests)
    assert first["To"] == "zoe@xn--exmple-cua.com"
    assert first["Subject"] == "Café ☕ ready"
    header_block = base64.urlsafe_b64decode(gmail.requests[0].body["raw"]).split(b"\r\n\r\n")[0].decode("ascii")
    assert "Subject: =?utf-8?" in header_block  # headers stay 7-bit: RFC 2047 encoded words
    assert first.get_content() == "Grüße\r\n"
    # A redelivered job (same attempt) sends the same Message-ID: the duplicate is recognisable.
    assert first["Message-ID"] == second["Message-ID"] == MESSAGE_ID


def test_send_message_refuses_bad_addresses_and_header_injection_without_calling(gmail):
    with pytest.raises(TaskError, match="Not an email address in Cc: not-an-address"):
        send_message(CONTEXT, to="ann@example.com", subject="Hi", body="x", cc="not-an-address")
    with pytest.raises(TaskError, match=r"Not an email address in To: zoë@example\.com"):
        send_message(CONTEXT, to="zoë@example.com", subject="Hi", body="x")
    with pytest.raises(TaskError, match="cannot be built"):
        send_message(CONTEXT, to="ann@example.com", subject="Hi\nBcc: all@example.com", body="x")

    assert gmail.requests == []


# --- Read -----------------------------------------------------------------------------------------------------------


def test_read_message_decodes_headers_and_the_plain_text_part(gmail):
    original = gmail.add_message(
        sender='"Ann Smith" <ann@example.com>',
        subject="Café order #42",
        body="Héllo,\nit's late & broken.",
        html_body="<p>HTML version</p>",
        attachment=b"%PDF-1.4",
    )

    outputs = read_message(CONTEXT, message_id=original["id"])

    (received,) = gmail.requests
    assert (received.method, received.path) == ("GET", f"{MESSAGES}/{original['id']}")
    assert received.query == {"format": ["full"]}
    assert received.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert outputs == {
        "message_id": original["id"],
        "thread_id": original["threadId"],
        "from_address": "ann@example.com",
        "subject": "Café order #42",
        "body": "Héllo,\nit's late & broken.\n",
        "snippet": "Héllo, it's late & broken.",
    }
    assert "&#x27;" in original["snippet"]  # Gmail's own snippet is HTML-escaped; the output is not


def test_read_message_of_an_html_only_mail_gives_its_text(gmail):
    original = gmail.add_message(
        sender="news@example.com",
        subject="News",
        body="",
        html_body="<html><head><style>p {}</style></head><body><p>Hello&nbsp;<b>there</b></p><p>Bye</p></body></html>",
        plain=False,
    )

    assert read_message(CONTEXT, message_id=original["id"])["body"] == "Hello there\nBye"


def test_read_message_of_an_unknown_or_malformed_id_is_a_task_error(gmail):
    with pytest.raises(
        TaskError, match=r"Gmail refused the request \(404\): Requested entity was not found\."
    ) as error:
        read_message(CONTEXT, message_id="18c0ffee9999")
    assert not isinstance(error.value, TransientTaskError)

    with pytest.raises(TaskError, match="is not a Gmail message ID"):
        read_message(CONTEXT, message_id="../drafts/1")
    assert len(gmail.requests) == 1


# --- Reply ----------------------------------------------------------------------------------------------------------


def test_reply_threads_the_answer_to_the_sender(gmail):
    original = gmail.add_message(
        sender="Ann Smith <ann@example.com>",
        subject="Order 42",
        body="Where is it?",
        headers={"References": "<root@mail.example.com>"},
    )
    original_id = next(h["value"] for h in original["payload"]["headers"] if h["name"] == "Message-ID")

    outputs = reply_to_message(CONTEXT, message_id=original["id"], body="On its way.")

    read, sent = gmail.requests
    assert (read.method, read.path) == ("GET", f"{MESSAGES}/{original['id']}")
    assert read.query == {
        "format": ["metadata"],
        "metadataHeaders": ["Message-ID", "References", "Subject", "From", "Reply-To"],
    }
    assert (sent.method, sent.path) == ("POST", f"{MESSAGES}/send")
    assert set(sent.body) == {"raw", "threadId"}
    assert sent.body["threadId"] == original["threadId"]
    message = _raw(sent)
    assert message["To"] == "Ann Smith <ann@example.com>"
    assert message["Subject"] == "Re: Order 42"
    assert message["In-Reply-To"] == original_id
    assert message["References"] == f"<root@mail.example.com> {original_id}"
    assert message["Message-ID"] == MESSAGE_ID
    assert message.get_content() == "On its way.\r\n"
    reply = gmail.messages[outputs["message_id"]]
    assert outputs == {"message_id": reply["id"], "thread_id": original["threadId"]}


def test_reply_goes_to_reply_to_and_keeps_an_existing_re_prefix(gmail):
    original = gmail.add_message(
        sender="Ann <ann@example.com>",
        subject="RE: Order 42",
        body="?",
        headers={"Reply-To": "orders@example.com"},
    )

    reply_to_message(CONTEXT, message_id=original["id"], body="Done.")

    message = _raw(gmail.requests[-1])
    assert (message["To"], message["Subject"]) == ("orders@example.com", "RE: Order 42")


# --- Search ---------------------------------------------------------------------------------------------------------


def test_search_lists_then_reads_each_match_newest_first(gmail):
    older = gmail.add_message(sender="Ann <ann@example.com>", subject="Invoice 1", body="Your invoice")
    gmail.add_message(sender="bob@example.com", subject="Lunch", body="Pizza?")
    newer = gmail.add_message(sender="Carl <carl@example.com>", subject="Invoice 2 & more", body="Another invoice")

    outputs = search_messages(CONTEXT, query="invoice", max_results=10)

    listing, *reads = gmail.requests
    assert (listing.method, listing.path) == ("GET", MESSAGES)
    assert listing.query == {"q": ["invoice"], "maxResults": ["10"]}
    assert [(r.method, r.path) for r in reads] == [
        ("GET", f"{MESSAGES}/{newer['id']}"),
        ("GET", f"{MESSAGES}/{older['id']}"),
    ]
    assert all(r.query == {"format": ["metadata"], "metadataHeaders": ["From", "Subject"]} for r in reads)
    assert outputs == {
        "messages": [
            {
                "message_id": newer["id"],
                "thread_id": newer["threadId"],
                "from_address": "carl@example.com",
                "subject": "Invoice 2 & more",
                "snippet": "Another invoice",
            },
            {
                "message_id": older["id"],
                "thread_id": older["threadId"],
                "from_address": "ann@example.com",
                "subject": "Invoice 1",
                "snippet": "Your invoice",
            },
        ]
    }


def test_search_follows_pages_up_to_max_results(gmail):
    for number in range(5):
        gmail.add_message(sender="ann@example.com", subject=f"Report {number}", body="weekly report")
    gmail.page_size = 2

    outputs = search_messages(CONTEXT, query="from:ann@example.com report", max_results=3)

    listings = [r for r in gmail.requests if r.path == MESSAGES]
    assert [r.query for r in listings] == [
        {"q": ["from:ann@example.com report"], "maxResults": ["3"]},
        {"q": ["from:ann@example.com report"], "maxResults": ["1"], "pageToken": ["2"]},
    ]
    assert [m["subject"] for m in outputs["messages"]] == ["Report 4", "Report 3", "Report 2"]
    assert len(gmail.requests) == 2 + 3


def test_search_without_matches_is_an_empty_list_and_max_results_must_be_positive(gmail):
    assert search_messages(CONTEXT, query="nothing-matches-this") == {"messages": []}
    assert gmail.requests[0].query["maxResults"] == ["10"]

    with pytest.raises(TaskError, match="max_results of at least 1"):
        search_messages(CONTEXT, query="x", max_results=0)


# --- Errors ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason", "headers", "retry_after"),
    [
        (429, "rateLimitExceeded", {"Retry-After": "7"}, 7.0),
        (403, "userRateLimitExceeded", {}, None),
        (403, "rateLimitExceeded", {"Retry-After": "3"}, 3.0),
        (500, "backendError", {}, None),
        (503, "backendError", {}, None),
    ],
)
def test_rate_limits_and_server_errors_are_retried(gmail, status, reason, headers, retry_after):
    gmail.fail(status, "Slow down", reason=reason, headers=headers)

    with pytest.raises(TransientTaskError) as error:
        send_message(CONTEXT, to="ann@example.com", subject="Hi", body="x")

    assert error.value.retry_after == retry_after
    expected = f"Gmail is rate limiting ({status})" if status < 500 else f"Gmail answered {status}"
    assert str(error.value) == f"{expected}: Slow down"


def test_a_failure_on_one_of_the_search_reads_is_retried_as_a_whole(gmail):
    gmail.add_message(sender="ann@example.com", subject="Invoice", body="invoice")
    match = gmail.add_message(sender="ann@example.com", subject="Invoice 2", body="invoice")
    gmail.fail(429, headers={"Retry-After": "2"}, when=f"GET {MESSAGES}/{match['id']}")

    with pytest.raises(TransientTaskError):
        search_messages(CONTEXT, query="invoice")


@pytest.mark.parametrize(
    ("status", "message", "reason"),
    [
        (403, "Insufficient Permission", "insufficientPermissions"),
        (400, "Invalid To header", "invalidArgument"),
    ],
)
def test_refusals_fail_with_googles_message(gmail, status, message, reason):
    gmail.fail(status, message, reason=reason)

    with pytest.raises(TaskError) as error:
        send_message(CONTEXT, to="ann@example.com", subject="Hi", body="x")

    assert not isinstance(error.value, TransientTaskError)
    assert str(error.value) == f"Gmail refused the request ({status}): {message}"


def test_a_rejected_token_is_a_task_error(gmail):
    context = credential_context({"access_token": "revoked"})

    with pytest.raises(TaskError, match=r"\(401\): Request had invalid authentication credentials") as error:
        read_message(context, message_id="18c0ffee0001")
    assert not isinstance(error.value, TransientTaskError)


def test_missing_token_or_credential_fails_before_calling(gmail):
    with pytest.raises(TaskError, match="no access token"):
        send_message(credential_context({}), to="ann@example.com", subject="Hi", body="x")
    with pytest.raises(TaskError, match="needs a credential"):
        send_message(dataclasses.replace(CONTEXT, credential=None), to="ann@example.com", subject="Hi", body="x")
    assert gmail.requests == []


def test_an_unreachable_gmail_is_retried():
    with (
        override_settings(NEENA_GMAIL_BASE_URL=f"http://127.0.0.1:{_closed_port()}/gmail/v1"),
        pytest.raises(TransientTaskError, match="Gmail could not be reached"),
    ):
        send_message(CONTEXT, to="ann@example.com", subject="Hi", body="x")


# --- Through the engine ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_send_step_runs_through_the_engine(gmail, owner, organization, monkeypatch):
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: None)
    oauth2_credential_store(owner, organization, "gmail", {"access_token": ACCESS_TOKEN})

    task_run = run_one_step(
        owner, organization, "Send Gmail Message", to="ann@example.com", subject="Welcome", body="Hello Ann."
    )

    assert task_run.status == TaskRun.Status.COMPLETED, task_run.error
    assert task_run.flow_run.status == FlowRun.Status.COMPLETED
    (received,) = gmail.requests
    assert received.path == f"{MESSAGES}/send"
    message = _raw(received)
    assert (message["To"], message["Subject"], message.get_content()) == (
        "ann@example.com",
        "Welcome",
        "Hello Ann.\r\n",
    )
    assert message["Message-ID"] == f"<neena.{task_run.id}.0@neena.local>"
    (sent,) = gmail.messages.values()
    assert task_run.result == {"message_id": sent["id"], "thread_id": sent["threadId"]}


class _WorkerDied(BaseException):
    """Stands for the process dying right after the call: not an Exception, so nothing in the engine catches it."""


@pytest.mark.django_db
def test_a_run_retry_sends_with_a_new_message_id(gmail, owner, organization, monkeypatch):
    """The worker dies after Gmail sent the message: the sweeper fails the step (the call may have happened) and
    a person retries the run, which sends again with a Message-ID of its own, not the first attempt's (a mail
    system deduplicating by Message-ID would drop the retry)."""
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: None)
    monkeypatch.setattr("apps.runs.services.control.send_steps", lambda steps: None)
    oauth2_credential_store(owner, organization, "gmail", {"access_token": ACCESS_TOKEN})
    real_call = step_execution.task_call

    def sends_then_dies(*args, **kwargs):
        real_call(*args, **kwargs)
        raise _WorkerDied

    monkeypatch.setattr(step_execution, "task_call", sends_then_dies)
    with pytest.raises(_WorkerDied):
        run_one_step(owner, organization, "Send Gmail Message", to="ann@example.com", subject="Refund", body="Sent.")
    task_run = TaskRun.objects.get()
    assert runs_sweep(now=task_run.lease_expires_at + timedelta(seconds=1)).failed_dead == 1
    task_run.refresh_from_db()
    assert (task_run.status, task_run.error) == (TaskRun.Status.FAILED, CALL_INTERRUPTED)

    run_retry(flow_run=task_run.flow_run, user=owner)
    monkeypatch.setattr(step_execution, "task_call", real_call)
    step_execution.task_run_execute(task_run_id=task_run.id)

    task_run.refresh_from_db()
    assert task_run.status == TaskRun.Status.COMPLETED, task_run.error
    assert [message["Message-ID"] for message in gmail.sent()] == [
        f"<neena.{task_run.id}.0@neena.local>",
        f"<neena.{task_run.id}.retry1.0@neena.local>",
    ]
