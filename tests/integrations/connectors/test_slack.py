"""The ``slack`` connector against a fake Slack Web API on 127.0.0.1: the exact requests the real API expects, the
outputs, Slack's ``ok: false`` and HTTP error mapping, and one step through the engine."""

import dataclasses

import httpx
import pytest
from django.test import override_settings

from apps.integrations.connectors import slack as connector
from apps.integrations.connectors.slack import list_channels, post_message, reply_in_thread
from apps.integrations.execution import TaskError, TransientTaskError
from apps.runs.models import FlowRun, TaskRun
from tests.fakes.slack import BOT_TOKEN, FakeSlack
from tests.integrations.connectors.steps import credential_context, oauth2_credential_store, run_one_step

CONTEXT = credential_context({"access_token": BOT_TOKEN})
JSON_UTF8 = "application/json; charset=utf-8"


@pytest.fixture
def slack():
    fake = FakeSlack()
    try:
        with override_settings(NEENA_SLACK_BASE_URL=fake.base_url):
            yield fake
    finally:
        fake.stop()


@pytest.fixture
def support(slack):
    return slack.add_channel("support", num_members=12)


# --- Tasks ------------------------------------------------------------------------------------------------------


def test_post_message_sends_the_channel_name_as_given(slack, support):
    outputs = post_message(CONTEXT, channel="#support", text="New ticket: *Charged twice*")

    (received,) = slack.requests
    assert (received.method, received.path, received.query) == ("POST", "/api/chat.postMessage", {})
    assert received.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert received.headers["Content-Type"] == JSON_UTF8
    assert received.body == {"channel": "#support", "text": "New ticket: *Charged twice*"}
    (message,) = slack.messages
    assert outputs == {"channel": support["id"], "ts": message["ts"]}
    assert "thread_ts" not in message


def test_reply_in_thread_posts_with_thread_ts(slack, support):
    parent = post_message(CONTEXT, channel=support["id"], text="Question?")

    outputs = reply_in_thread(CONTEXT, channel=support["id"], thread_ts=parent["ts"], text="Answer.")

    received = slack.requests[-1]
    assert (received.method, received.path) == ("POST", "/api/chat.postMessage")
    assert received.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert received.headers["Content-Type"] == JSON_UTF8
    assert received.body == {"channel": support["id"], "thread_ts": parent["ts"], "text": "Answer."}
    reply = slack.messages[-1]
    assert outputs == {"ts": reply["ts"]}
    assert reply["thread_ts"] == parent["ts"] != reply["ts"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: post_message(CONTEXT, channel=" ", text="x"), "non-empty channel"),
        (lambda: post_message(CONTEXT, channel="#support", text=""), "non-empty text"),
        (lambda: reply_in_thread(CONTEXT, channel="C1", thread_ts="", text="x"), "non-empty thread_ts"),
        (lambda: list_channels(CONTEXT, limit=0), "from 1 to 1000"),
        (lambda: list_channels(CONTEXT, limit=1001), "from 1 to 1000"),
    ],
)
def test_empty_arguments_are_refused_before_calling(slack, call, message):
    with pytest.raises(TaskError, match=message):
        call()
    assert slack.requests == []


def test_list_channels_lists_public_unarchived_channels(slack, support):
    slack.add_channel("secret", is_private=True)
    slack.add_channel("old", is_archived=True)
    random = slack.add_channel("random", num_members=40)

    outputs = list_channels(CONTEXT)

    (received,) = slack.requests
    assert (received.method, received.path, received.body) == ("GET", "/api/conversations.list", None)
    assert received.query == {"types": "public_channel", "exclude_archived": "true", "limit": "100"}
    assert received.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert outputs == {
        "channels": [
            {"id": support["id"], "name": "support", "is_private": False, "num_members": 12},
            {"id": random["id"], "name": "random", "is_private": False, "num_members": 40},
        ]
    }


def test_list_channels_follows_the_cursor_up_to_the_limit(slack, monkeypatch):
    monkeypatch.setattr(connector, "PAGE_SIZE", 2)
    channels = [slack.add_channel(f"team-{number}") for number in range(6)]

    outputs = list_channels(CONTEXT, limit=5)

    assert [channel["id"] for channel in outputs["channels"]] == [channel["id"] for channel in channels[:5]]
    pages = [(received.query["limit"], received.query.get("cursor")) for received in slack.requests]
    assert [limit for limit, _ in pages] == ["2", "2", "1"]
    assert pages[0][1] is None and pages[1][1] and pages[2][1] and pages[1][1] != pages[2][1]


def test_list_channels_stops_when_slack_has_no_more(slack, monkeypatch):
    monkeypatch.setattr(connector, "PAGE_SIZE", 2)
    for number in range(3):
        slack.add_channel(f"team-{number}")

    assert len(list_channels(CONTEXT, limit=50)["channels"]) == 3
    assert len(slack.requests) == 2


# --- Errors -----------------------------------------------------------------------------------------------------


def test_slack_errors_answered_with_200_fail_with_slacks_code(slack):
    with pytest.raises(TaskError, match=r"Slack refused chat\.postMessage: channel_not_found") as raised:
        post_message(CONTEXT, channel="#nowhere", text="Hello")
    assert not isinstance(raised.value, TransientTaskError)


def test_a_wrong_token_fails_with_invalid_auth(slack, support):
    with pytest.raises(TaskError, match="invalid_auth") as raised:
        post_message(credential_context({"access_token": "xoxb-wrong"}), channel="#support", text="Hello")
    assert not isinstance(raised.value, TransientTaskError)
    assert slack.messages == []


def test_a_credential_without_a_token_is_refused_before_calling(slack):
    with pytest.raises(TaskError, match="no access token"):
        list_channels(credential_context({"refresh_token": "r"}))
    with pytest.raises(TaskError, match="needs a credential"):
        list_channels(dataclasses.replace(CONTEXT, credential=None))
    assert slack.requests == []


def test_http_429_is_transient_with_retry_after(slack, support):
    slack.fail_next(429, {"Retry-After": "30"})
    with pytest.raises(TransientTaskError, match="rate limiting") as raised:
        post_message(CONTEXT, channel="#support", text="Hello")
    assert raised.value.retry_after == 30
    assert slack.messages == []


def test_ratelimited_and_slacks_own_failures_are_transient(slack, support):
    slack.fail_next(error="ratelimited", headers={"Retry-After": "4"})
    with pytest.raises(TransientTaskError, match="ratelimited") as raised:
        list_channels(CONTEXT)
    assert raised.value.retry_after == 4

    slack.fail_next(error="internal_error")
    with pytest.raises(TransientTaskError, match="internal_error"):
        list_channels(CONTEXT)


def test_other_ok_false_codes_are_task_errors(slack):
    slack.fail_next(error="missing_scope")
    with pytest.raises(TaskError, match="missing_scope") as raised:
        list_channels(CONTEXT)
    assert not isinstance(raised.value, TransientTaskError)


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_transient(slack, support, status):
    slack.fail_next(status)
    with pytest.raises(TransientTaskError, match=str(status)):
        reply_in_thread(CONTEXT, channel=support["id"], thread_ts="1.000001", text="Hello")


def test_the_error_details_slack_gives_are_kept():
    answer = httpx.Response(
        200,
        json={
            "ok": False,
            "error": "missing_scope",
            "needed": "channels:read",
            "provided": "chat:write",
            "response_metadata": {"messages": ["[ERROR] token lacks a scope"]},
        },
    )

    with pytest.raises(TaskError) as raised:
        connector._ok_payload(answer, "conversations.list")
    assert str(raised.value) == (
        "Slack refused conversations.list: missing_scope ([ERROR] token lacks a scope; needs the channels:read scope)"
    )


# --- Through the engine -----------------------------------------------------------------------------------------


@pytest.fixture
def _no_broker(monkeypatch):
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: None)


@pytest.mark.django_db
@pytest.mark.usefixtures("_no_broker")
def test_a_step_posts_with_the_stored_oauth2_token(owner, organization, slack, support):
    oauth2_credential_store(owner, organization, "slack", {"access_token": BOT_TOKEN, "token_type": "bot"})

    task_run = run_one_step(owner, organization, "Post Slack Message", channel="#support", text="A new ticket.")

    assert task_run.status == TaskRun.Status.COMPLETED, task_run.error
    (message,) = slack.messages
    assert task_run.result == {"channel": support["id"], "ts": message["ts"]}
    (received,) = slack.requests
    assert received.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert received.body == {"channel": "#support", "text": "A new ticket."}
    assert FlowRun.objects.get(id=task_run.flow_run_id).status == FlowRun.Status.COMPLETED


@pytest.mark.django_db
@pytest.mark.usefixtures("_no_broker")
def test_a_step_without_a_credential_fails_naming_slack(owner, organization, slack, support):
    task_run = run_one_step(owner, organization, "Post Slack Message", channel="#support", text="A new ticket.")

    assert task_run.status == TaskRun.Status.FAILED
    assert "No Slack credential" in task_run.error
    assert slack.requests == []
