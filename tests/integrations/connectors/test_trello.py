"""The ``trello`` connector against a fake Trello on 127.0.0.1: the exact requests the real API expects (key and token
as query parameters), the outputs, the error mapping, and one step through the engine."""

import dataclasses

import pytest
from django.test import override_settings

from apps.credentials.services.credentials import credential_upsert
from apps.integrations.connectors.trello import create_card, list_boards, list_lists, move_card
from apps.integrations.execution import TaskError, TransientTaskError
from apps.runs.models import FlowRun, TaskRun
from tests.fakes.trello import API_KEY, TOKEN, FakeTrello
from tests.integrations.connectors.steps import credential_context, run_one_step

CONTEXT = credential_context({"api_key": API_KEY, "token": TOKEN})
AUTH = {"key": API_KEY, "token": TOKEN}


@pytest.fixture
def trello():
    fake = FakeTrello()
    try:
        with override_settings(NEENA_TRELLO_BASE_URL=fake.base_url):
            yield fake
    finally:
        fake.stop()


@pytest.fixture
def board(trello):
    return trello.add_board("Support")


@pytest.fixture
def todo(trello, board):
    return trello.add_list(board["id"], "To do")


@pytest.fixture
def done(trello, board):
    return trello.add_list(board["id"], "Done")


# --- Tasks ------------------------------------------------------------------------------------------------------


def test_create_card_posts_the_card_with_key_and_token(trello, todo):
    outputs = create_card(
        CONTEXT, list_id=todo["id"], name="Refund Ann", desc="Charged **twice**.", due="2025-06-01T12:00:00Z"
    )

    (received,) = trello.requests
    assert (received.method, received.path, received.query) == ("POST", "/1/cards", AUTH)
    assert received.headers["Content-Type"] == "application/json"
    assert received.body == {
        "idList": todo["id"],
        "name": "Refund Ann",
        "desc": "Charged **twice**.",
        "due": "2025-06-01T12:00:00Z",
    }
    (card,) = trello.cards.values()
    assert outputs == {"card_id": card["id"], "url": card["url"]}
    assert card["url"].startswith("https://trello.com/c/")
    assert (card["idList"], card["due"]) == (todo["id"], "2025-06-01T12:00:00Z")


def test_create_card_without_a_due_date_sends_no_due(trello, todo):
    create_card(CONTEXT, list_id=todo["id"], name="Call back")

    assert trello.requests[0].body == {"idList": todo["id"], "name": "Call back", "desc": ""}


def test_list_boards_asks_for_the_members_boards_with_the_filter(trello, board):
    closed = trello.add_board("Archive", closed=True)

    assert list_boards(CONTEXT) == {"boards": [{"id": board["id"], "name": "Support", "url": board["url"]}]}
    assert list_boards(CONTEXT, filter="closed") == {
        "boards": [{"id": closed["id"], "name": "Archive", "url": closed["url"]}]
    }

    first, second = trello.requests
    assert (first.method, first.path, first.body) == ("GET", "/1/members/me/boards", None)
    assert first.query == {"filter": "open", "fields": "name,url", **AUTH}
    assert second.query["filter"] == "closed"


def test_list_lists_returns_the_boards_lists_in_order(trello, board, todo, done):
    trello.add_list(board["id"], "Old", closed=True)

    outputs = list_lists(CONTEXT, board_id=board["id"])

    (received,) = trello.requests
    assert (received.method, received.path) == ("GET", f"/1/boards/{board['id']}/lists")
    assert received.query == {"filter": "open", "fields": "name,pos", **AUTH}
    assert outputs == {
        "lists": [
            {"id": todo["id"], "name": "To do", "pos": todo["pos"]},
            {"id": done["id"], "name": "Done", "pos": done["pos"]},
        ]
    }


def test_move_card_puts_the_new_list(trello, todo, done):
    card = trello.add_card(todo["id"], "Refund Ann")

    outputs = move_card(CONTEXT, card_id=card["id"], list_id=done["id"])

    (received,) = trello.requests
    assert (received.method, received.path, received.query) == ("PUT", f"/1/cards/{card['id']}", AUTH)
    assert received.body == {"idList": done["id"]}
    assert outputs == {"card_id": card["id"], "list_id": done["id"]}
    assert trello.cards[card["id"]]["idList"] == done["id"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: list_boards(CONTEXT, filter="mine"), "not a Trello board filter"),
        (lambda: list_lists(CONTEXT, board_id="abc123def456", filter="starred"), "not a Trello list filter"),
        (lambda: list_lists(CONTEXT, board_id="../members/me"), "not a Trello board ID"),
        (lambda: move_card(CONTEXT, card_id="5f1a2b3c4d5e6f7a8b9c0d1e?x=1", list_id="abc123def456"), "card ID"),
        (lambda: create_card(CONTEXT, list_id="abc123def456", name=" "), "needs a name"),
    ],
)
def test_bad_arguments_are_refused_before_calling(trello, call, message):
    with pytest.raises(TaskError, match=message):
        call()
    assert trello.requests == []


# --- Errors -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secrets", "message"),
    [({"api_key": API_KEY, "token": "wrong"}, "invalid token"), ({"api_key": "wrong", "token": TOKEN}, "invalid key")],
)
def test_wrong_credentials_are_refused_with_trellos_message(trello, board, secrets, message):
    with pytest.raises(TaskError, match=rf"\(401\): {message}") as raised:
        list_boards(credential_context(secrets))
    assert not isinstance(raised.value, TransientTaskError)


def test_a_credential_without_its_token_is_refused_before_calling(trello):
    with pytest.raises(TaskError, match="both the API key"):
        list_boards(credential_context({"api_key": API_KEY}))
    with pytest.raises(TaskError, match="needs a credential"):
        list_boards(dataclasses.replace(CONTEXT, credential=None))
    assert trello.requests == []


def test_an_unknown_card_is_a_task_error(trello, done):
    with pytest.raises(TaskError, match=r"\(404\): The requested resource was not found") as raised:
        move_card(CONTEXT, card_id="0123456789abcdef01234567", list_id=done["id"])
    assert not isinstance(raised.value, TransientTaskError)


def test_an_unknown_list_is_a_task_error(trello):
    with pytest.raises(TaskError, match=r"\(400\): invalid value for idList"):
        create_card(CONTEXT, list_id="0123456789abcdef01234567", name="Lost")


def test_rate_limits_are_transient_with_retry_after(trello, todo):
    trello.fail_next(429, {"Retry-After": "10"})
    with pytest.raises(TransientTaskError, match="Rate limit exceeded") as raised:
        create_card(CONTEXT, list_id=todo["id"], name="Later")
    assert raised.value.retry_after == 10
    assert trello.cards == {}


@pytest.mark.parametrize("status", [500, 502])
def test_server_errors_are_transient(trello, board, status):
    trello.fail_next(status)
    with pytest.raises(TransientTaskError, match=str(status)):
        list_lists(CONTEXT, board_id=board["id"])


# --- Through the engine -----------------------------------------------------------------------------------------


@pytest.fixture
def _no_broker(monkeypatch):
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: None)


@pytest.mark.django_db
@pytest.mark.usefixtures("_no_broker")
def test_a_step_creates_a_card_with_the_stored_key_and_token(owner, organization, trello, todo):
    credential_upsert(user=owner, integration_short_name="trello", credentials={"api_key": API_KEY, "token": TOKEN})

    task_run = run_one_step(owner, organization, "Create Trello Card", list_id=todo["id"], name="Refund Ann")

    assert task_run.status == TaskRun.Status.COMPLETED, task_run.error
    (card,) = trello.cards.values()
    assert task_run.result == {"card_id": card["id"], "url": card["url"]}
    (received,) = trello.requests
    assert received.query == AUTH
    assert received.body == {"idList": todo["id"], "name": "Refund Ann", "desc": ""}
    assert FlowRun.objects.get(id=task_run.flow_run_id).status == FlowRun.Status.COMPLETED


@pytest.mark.django_db
@pytest.mark.usefixtures("_no_broker")
def test_a_step_without_a_credential_fails_naming_trello(owner, organization, trello, todo):
    task_run = run_one_step(owner, organization, "Create Trello Card", list_id=todo["id"], name="Refund Ann")

    assert task_run.status == TaskRun.Status.FAILED
    assert "No Trello credential" in task_run.error
    assert trello.requests == []
