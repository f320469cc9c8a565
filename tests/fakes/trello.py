"""A fake Trello REST API on 127.0.0.1, answering in Trello's own shapes (JSON objects; plain-text errors).

It checks the ``key`` and ``token`` query parameters and answers 401 (``invalid key``, ``invalid token``) otherwise.
Tests seed boards, lists and cards with ``add_board``/``add_list``/``add_card``, queue error answers with
``fail_next(...)``, and read back ``requests`` and the ``boards``, ``lists`` and ``cards`` dicts (keyed by ID).

Served: ``POST /1/cards``, ``GET /1/cards/{id}``, ``PUT /1/cards/{id}``, ``GET /1/members/me/boards`` and
``GET /1/boards/{id}/lists``; arguments come from the query string and a JSON or form body, ``fields`` and
``filter`` are honoured.

Usage::

    trello = FakeTrello()
    board = trello.add_board("Support")
    todo = trello.add_list(board["id"], "To do")
    with override_settings(NEENA_TRELLO_BASE_URL=trello.base_url):
        ...
    trello.stop()
"""

import json
import re
import secrets
import string
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

# The key and token the fake accepts unless told otherwise: what a test stores in the Trello credential.
API_KEY = "0123456789abcdef0123456789abcdef"
TOKEN = "ATTAfaketrellotoken0123456789abcdef"

TRELLO_ID = re.compile(r"^[0-9a-f]{24}$")
BOARD_FILTERS = ("all", "closed", "members", "open", "organization", "public", "starred")
LIST_FILTERS = ("all", "closed", "none", "open")
NOT_FOUND = "The requested resource was not found."


@dataclass
class ReceivedRequest:
    """One request as the fake received it. ``path`` is e.g. ``/1/cards``; ``query`` holds the query string's
    parameters (``key`` and ``token`` among them); ``headers`` is case-insensitive; ``body`` is the decoded JSON or
    form body (None without one)."""

    method: str
    path: str
    query: dict[str, str]
    headers: httpx.Headers
    body: Any


@dataclass
class Failure:
    """A queued error answer for the next request (Trello's errors are plain text, its rate limits JSON)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


Answer = tuple[int, dict[str, str], Any]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _short_link() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(8))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class FakeTrello:
    """A running fake Trello; ``base_url`` (ending in ``/1``) goes into NEENA_TRELLO_BASE_URL."""

    def __init__(self, *, key: str = API_KEY, token: str = TOKEN) -> None:
        self.key = key
        self.token = token
        self.member_id = secrets.token_hex(12)
        self.boards: dict[str, dict[str, Any]] = {}
        self.lists: dict[str, dict[str, Any]] = {}
        self.cards: dict[str, dict[str, Any]] = {}
        self.requests: list[ReceivedRequest] = []
        self.failures: deque[Failure] = deque()
        self._lock = threading.Lock()

        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, headers, payload = fake._answer(
                    self.command, self.path, httpx.Headers(self.headers.items()), raw
                )
                is_text = isinstance(payload, str)
                data = payload.encode() if is_text else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", f"{'text/plain' if is_text else 'application/json'}; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815 - the names http.server dispatches to

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/1"

    # --- Seeding and controlling -------------------------------------------------------------------------------------

    def add_board(self, name: str, *, closed: bool = False, starred: bool = False) -> dict[str, Any]:
        """Seeds a board the member belongs to; returns it as Trello describes one."""
        board_id, short_link = secrets.token_hex(12), _short_link()
        board = {
            "id": board_id,
            "name": name,
            "desc": "",
            "closed": closed,
            "starred": starred,
            "idOrganization": None,
            "pinned": False,
            "url": f"https://trello.com/b/{short_link}/{_slug(name)}",
            "shortUrl": f"https://trello.com/b/{short_link}",
            "shortLink": short_link,
            "prefs": {"permissionLevel": "private", "background": "blue"},
            "dateLastActivity": _now(),
        }
        self.boards[board_id] = board
        return board

    def add_list(self, board_id: str, name: str, *, closed: bool = False) -> dict[str, Any]:
        """Seeds a list at the end of a board; returns it."""
        position = 16384 * (1 + sum(1 for item in self.lists.values() if item["idBoard"] == board_id))
        trello_list = {
            "id": secrets.token_hex(12),
            "name": name,
            "closed": closed,
            "idBoard": board_id,
            "pos": position,
            "subscribed": False,
            "softLimit": None,
        }
        self.lists[trello_list["id"]] = trello_list
        return trello_list

    def add_card(self, list_id: str, name: str, *, desc: str = "", due: str | None = None) -> dict[str, Any]:
        """Seeds a card at the bottom of a list; returns it."""
        board_id = self.lists[list_id]["idBoard"]
        short_link = _short_link()
        id_short = 1 + sum(1 for card in self.cards.values() if card["idBoard"] == board_id)
        card = {
            "id": secrets.token_hex(12),
            "badges": {"comments": 0, "attachments": 0, "description": bool(desc), "due": due},
            "closed": False,
            "dateLastActivity": _now(),
            "desc": desc,
            "due": due,
            "dueComplete": False,
            "idBoard": board_id,
            "idList": list_id,
            "idMembers": [],
            "idLabels": [],
            "labels": [],
            "idShort": id_short,
            "name": name,
            "pos": 16384 * (1 + sum(1 for card in self.cards.values() if card["idList"] == list_id)),
            "shortLink": short_link,
            "shortUrl": f"https://trello.com/c/{short_link}",
            "url": f"https://trello.com/c/{short_link}/{id_short}-{_slug(name)}",
        }
        self.cards[card["id"]] = card
        return card

    def fail_next(self, status: int, headers: dict[str, str] | None = None, body: Any = None) -> None:
        """Queues an error answer for the next request, e.g. ``fail_next(429, {"Retry-After": "10"})``."""
        self.failures.append(Failure(status, headers or {}, body))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "FakeTrello":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- Answering ---------------------------------------------------------------------------------------------------

    def _answer(self, method: str, target: str, headers: httpx.Headers, raw: bytes) -> Answer:
        split = urlsplit(target)
        query = dict(parse_qsl(split.query))
        body: Any = None
        if raw and headers.get("Content-Type", "").startswith("application/json"):
            body = json.loads(raw)
        elif raw:
            body = dict(parse_qsl(raw.decode()))
        with self._lock:
            self.requests.append(ReceivedRequest(method, split.path, query, headers, body))
            if self.failures:
                failure = self.failures.popleft()
                default: Any = (
                    {"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"}
                    if failure.status == 429
                    else "Internal Server Error"
                )
                return failure.status, failure.headers, failure.body if failure.body is not None else default
            if query.get("key") != self.key:
                return 401, {}, "invalid key"
            if not query.get("token"):
                return 401, {}, "unauthorized permission requested"
            if query["token"] != self.token:
                return 401, {}, "invalid token"
            arguments = {**query, **(body if isinstance(body, dict) else {})}
            return self._route(method, split.path, arguments)

    def _route(self, method: str, path: str, arguments: dict[str, Any]) -> Answer:
        parts = path.strip("/").split("/")
        if parts == ["1", "cards"] and method == "POST":
            return self._create_card(arguments)
        if len(parts) == 3 and parts[:2] == ["1", "cards"] and method in ("GET", "PUT"):
            card = self._find(self.cards, parts[2])
            if isinstance(card, tuple):
                return card
            return self._update_card(card, arguments) if method == "PUT" else (200, {}, card)
        if parts == ["1", "members", "me", "boards"] and method == "GET":
            return self._member_boards(arguments)
        if len(parts) == 4 and parts[:2] == ["1", "boards"] and parts[3] == "lists" and method == "GET":
            board = self._find(self.boards, parts[2])
            if isinstance(board, tuple):
                return board
            return self._board_lists(board, arguments)
        return 404, {}, f"Cannot {method} {path}"

    @staticmethod
    def _find(items: dict[str, dict[str, Any]], reference: str) -> dict[str, Any] | Answer:
        """The item by ID (or short link), else the error Trello gives: 400 for a malformed ID, 404 for none."""
        item = items.get(reference) or next((i for i in items.values() if i.get("shortLink") == reference), None)
        if item is not None:
            return item
        if not TRELLO_ID.match(reference):
            return 400, {}, "invalid id"
        return 404, {}, NOT_FOUND

    @staticmethod
    def _fields(item: dict[str, Any], fields: str | None) -> dict[str, Any]:
        if not fields or fields == "all":
            return item
        wanted = {"id", *fields.split(",")}
        return {name: value for name, value in item.items() if name in wanted}

    def _create_card(self, arguments: dict[str, Any]) -> Answer:
        list_id = str(arguments.get("idList") or "")
        if list_id not in self.lists:
            return 400, {}, "invalid value for idList"
        due = arguments.get("due")
        if due not in (None, ""):
            try:
                datetime.fromisoformat(str(due).replace("Z", "+00:00"))
            except ValueError:
                return 400, {}, "invalid value for due"
        card = self.add_card(
            list_id, str(arguments.get("name") or ""), desc=str(arguments.get("desc") or ""), due=due or None
        )
        return 200, {}, card

    def _update_card(self, card: dict[str, Any], arguments: dict[str, Any]) -> Answer:
        if "idList" in arguments:
            list_id = str(arguments["idList"])
            if list_id not in self.lists:
                return 400, {}, "invalid value for idList"
            card["idList"] = list_id
            card["idBoard"] = self.lists[list_id]["idBoard"]
        for name in ("name", "desc", "due", "closed"):
            if name in arguments:
                card[name] = arguments[name]
        card["dateLastActivity"] = _now()
        return 200, {}, card

    def _member_boards(self, arguments: dict[str, Any]) -> Answer:
        board_filter = str(arguments.get("filter") or "all")
        if board_filter not in BOARD_FILTERS:
            return 400, {}, "invalid value for filter"
        boards = [
            board
            for board in self.boards.values()
            if board_filter in ("all", "members", "organization", "public")
            or (board_filter == "open" and not board["closed"])
            or (board_filter == "closed" and board["closed"])
            or (board_filter == "starred" and board["starred"])
        ]
        return 200, {}, [self._fields(board, arguments.get("fields")) for board in boards]

    def _board_lists(self, board: dict[str, Any], arguments: dict[str, Any]) -> Answer:
        list_filter = str(arguments.get("filter") or "open")
        if list_filter not in LIST_FILTERS:
            return 400, {}, "invalid value for filter"
        lists = sorted(
            (
                item
                for item in self.lists.values()
                if item["idBoard"] == board["id"]
                and (list_filter == "all" or (list_filter == "open") != item["closed"])
                and list_filter != "none"
            ),
            key=lambda item: item["pos"],
        )
        return 200, {}, [self._fields(item, arguments.get("fields")) for item in lists]
