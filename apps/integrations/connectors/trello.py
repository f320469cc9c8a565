"""The ``trello`` integration: create and move cards, list boards and lists.

Credential (API key auth): ``secrets["api_key"]`` is the Trello API key (of the Power-Up or app) and
``secrets["token"]`` the user token granted to it; both go as the ``key`` and ``token`` query parameters Trello
documents. Calls go to NEENA_TRELLO_BASE_URL (https://api.trello.com/1).

Trello accepts no idempotency key, so ``context.idempotency_key`` is not sent: creating a card is a side effect retried
sparingly (``UNREPEATABLE_RETRY``), since a retry after a lost answer may create it twice; moving a card is
idempotent. 429
and 5xx answers are retried; other refusals fail the step with Trello's message (``invalid id``, ``invalid token``).
"""

import re
from typing import Any

import httpx

from apps.integrations.connectors.base import (
    REPEATABLE_RETRY,
    UNREPEATABLE_RETRY,
    AuthType,
    ConnectorSpec,
    DataType,
    Param,
    TaskSpec,
)
from apps.integrations.execution import TaskContext, TaskError
from apps.integrations.http import base_url, request

# Creating a card takes no idempotency key: a retry after a lost response may create it twice, so it retries sparingly.
# Reads and moving a card (setting its idList) are idempotent, so they are safe to repeat.

CONNECTOR = ConnectorSpec(
    name="Trello",
    short_name="trello",
    class_name="TrelloIntegration",
    auth_type=AuthType.API_KEY,
    description="Trello boards: create cards, move cards between lists, list boards and the lists on a board. "
    "Authenticates with an API key and a user token.",
    base_url_setting="NEENA_TRELLO_BASE_URL",
    tasks=(
        TaskSpec(
            task_name="Create Trello Card",
            python_method_name="create_card",
            description="Create or add a card to a Trello list, e.g. open a to-do card for a new request.",
            parameters=(
                Param("list_id", DataType.STRING, "The ID of the list to add the card to (Trello's idList)."),
                Param("name", DataType.STRING, "The card's title."),
                Param("desc", DataType.TEXT, "The card's description; Markdown is allowed.", optional=True, default=""),
                Param("due", DataType.DATETIME, "The card's due date and time (ISO 8601).", optional=True),
            ),
            outputs=(
                Param("card_id", DataType.STRING, "The ID of the created card."),
                Param("url", DataType.URL, "The card's web address."),
            ),
            side_effect=True,
            retry=UNREPEATABLE_RETRY,
        ),
        TaskSpec(
            task_name="List Trello Boards",
            python_method_name="list_boards",
            description="List or fetch the Trello boards the connected user belongs to, with their IDs and names.",
            parameters=(
                Param(
                    "filter",
                    DataType.STRING,
                    "Which boards to return: 'open', 'closed', 'starred' or 'all'.",
                    optional=True,
                    default="open",
                ),
            ),
            outputs=(Param("boards", DataType.LIST, "The boards, each with id, name and url."),),
            output_is_list=True,
            retry=REPEATABLE_RETRY,
        ),
        TaskSpec(
            task_name="List Trello Lists",
            python_method_name="list_lists",
            description="List or fetch the lists (columns) on a Trello board, e.g. to find the list to add a card to.",
            parameters=(
                Param("board_id", DataType.STRING, "The ID of the board whose lists to return."),
                Param(
                    "filter",
                    DataType.STRING,
                    "Which lists to return: 'open', 'closed' or 'all'.",
                    optional=True,
                    default="open",
                ),
            ),
            outputs=(Param("lists", DataType.LIST, "The lists, each with id, name and pos."),),
            output_is_list=True,
            retry=REPEATABLE_RETRY,
        ),
        TaskSpec(
            task_name="Move Trello Card",
            python_method_name="move_card",
            description="Move a Trello card to another list, e.g. move it to 'Done' when the work is finished.",
            parameters=(
                Param("card_id", DataType.STRING, "The ID of the card to move."),
                Param("list_id", DataType.STRING, "The ID of the list to move the card to (Trello's idList)."),
            ),
            outputs=(
                Param("card_id", DataType.STRING, "The ID of the moved card."),
                Param("list_id", DataType.STRING, "The ID of the list the card is now in."),
            ),
            side_effect=True,
            retry=REPEATABLE_RETRY,
        ),
    ),
)


# --- Implementations ---------------------------------------------------------------------------------------------

SERVICE = "Trello"
# Trello IDs are 24 hex digits; cards and boards are also reachable by their 8-character short link.
TRELLO_ID = re.compile(r"^[A-Za-z0-9]{8,24}$")
BOARD_FILTERS = ("open", "closed", "starred", "all")
LIST_FILTERS = ("open", "closed", "all")


def _call(
    context: TaskContext,
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    json: dict[str, Any] | None = None,
) -> Any:
    """One call authenticated with the key and token query parameters; returns the decoded JSON answer."""
    credential = context.require_credential()
    key, token = str(credential.secrets.get("api_key") or ""), str(credential.secrets.get("token") or "")
    if not key or not token:
        raise TaskError("The Trello credential needs both the API key (api_key) and the user token (token).")
    url = f"{base_url('NEENA_TRELLO_BASE_URL', 'https://api.trello.com/1')}{path}"
    # The setting or Trello's own address: the operator's choice, so trusted.
    response = request(
        SERVICE, method, url, params={**(params or {}), "key": key, "token": token}, json=json, trusted=True
    )
    return _decoded(response)


def _decoded(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise TaskError(f"Trello answered {response.status_code} without JSON: {response.text[:200]}") from None


def _id(value: str, what: str) -> str:
    """The ID, checked: it goes into URL paths, so anything but letters and digits is refused rather than sent."""
    value = value.strip()
    if not TRELLO_ID.match(value):
        raise TaskError(f"{value!r} is not a Trello {what} ID.")
    return value


def _choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    value = (value or "").strip().lower()
    if value not in allowed:
        raise TaskError(f"'{value}' is not a Trello {what} filter: use one of {', '.join(allowed)}.")
    return value


def create_card(
    context: TaskContext, *, list_id: str, name: str, desc: str = "", due: str | None = None
) -> dict[str, Any]:
    """POST /cards with the list, title, description and optional due date (sent in a JSON body, not the URL, so a
    long description fits)."""
    if not name.strip():
        raise TaskError("A Trello card needs a name.")
    card_fields: dict[str, Any] = {"idList": _id(list_id, "list"), "name": name, "desc": desc or ""}
    if due:
        card_fields["due"] = due
    card = _call(context, "POST", "/cards", json=card_fields)
    return {"card_id": card["id"], "url": card.get("url") or card.get("shortUrl") or ""}


def list_boards(context: TaskContext, *, filter: str = "open") -> dict[str, Any]:
    """GET /members/me/boards: the boards of the member whose token the credential holds."""
    boards = _call(
        context,
        "GET",
        "/members/me/boards",
        params={"filter": _choice(filter, BOARD_FILTERS, "board"), "fields": "name,url"},
    )
    return {"boards": [{"id": board["id"], "name": board.get("name"), "url": board.get("url")} for board in boards]}


def list_lists(context: TaskContext, *, board_id: str, filter: str = "open") -> dict[str, Any]:
    """GET /boards/{id}/lists, in the board's order (by position)."""
    lists = _call(
        context,
        "GET",
        f"/boards/{_id(board_id, 'board')}/lists",
        params={"filter": _choice(filter, LIST_FILTERS, "list"), "fields": "name,pos"},
    )
    return {"lists": [{"id": item["id"], "name": item.get("name"), "pos": item.get("pos")} for item in lists]}


def move_card(context: TaskContext, *, card_id: str, list_id: str) -> dict[str, Any]:
    """PUT /cards/{id} with the new idList; repeating it leaves the card where it is."""
    card = _call(context, "PUT", f"/cards/{_id(card_id, 'card')}", json={"idList": _id(list_id, "list")})
    return {"card_id": card["id"], "list_id": card.get("idList", list_id)}
