"""Text that can be stored: finding, or replacing, the characters no database column of ours can hold.

Two kinds of character are refused by the storage and encoders the platform writes through, and only fail there, late
(after a row was committed, or after a service was called): NUL (U+0000), which PostgreSQL's ``text`` and ``jsonb``
refuse, and lone surrogates (U+D800 to U+DFFF), which are not Unicode text at all, so UTF-8 (the database driver,
orjson, the response) cannot encode them. Python's ``json`` module turns a ``"\\ud800"`` escape into one.

Client input is refused where it is parsed (``apps.core.parsers``, the inbound webhook, the query string); what a
service answers cannot be refused, so the engine replaces it (``unstorable_replaced``) and says so. The walks are
iterative: a value nested thousands of levels deep costs no recursion.
"""

import json
import re
from dataclasses import dataclass
from typing import Any

from apps.core.exceptions import Location

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


@dataclass(frozen=True)
class TextProblem:
    """Where a JSON value cannot be accepted (``path`` inside it), why (``msg``) and the stable 422 ``type``."""

    path: list[str | int]
    msg: str
    type: str


def text_problem(text: str) -> tuple[str, str] | None:
    """The message and type for a string holding a NUL or a lone surrogate, else None."""
    if "\x00" in text:
        return "NUL characters are not allowed.", "null_characters_not_allowed"
    if UNSTORABLE.search(text):
        return (
            "Lone surrogates (U+D800 to U+DFFF, e.g. an unpaired \\ud800 escape) are not valid text.",
            "surrogate_characters_not_allowed",
        )
    return None


def json_problem(value: Any, *, max_depth: int) -> TextProblem | None:
    """The first problem of a parsed JSON value, in document order: an object or array nested deeper than
    ``max_depth`` (the outermost one is at depth 1), or a string (an object key included) that cannot be stored.

    A bad key is located at its object, with the key in the path as it would be stored (U+FFFD for what is refused).
    """
    stack: list[tuple[Any, list[str | int], int]] = [(value, [], 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return TextProblem(path, *problem)
        elif isinstance(item, dict | list):
            if depth + 1 > max_depth:
                return TextProblem(path, f"JSON may be nested at most {max_depth} levels deep.", "json_too_deep")
            children: list[tuple[Any, list[str | int], int]] = []
            if isinstance(item, dict):
                for key, child in item.items():
                    problem = text_problem(key) if isinstance(key, str) else None
                    if problem:
                        msg, kind = problem
                        return TextProblem([*path, UNSTORABLE.sub(REPLACEMENT, key)], f"This key: {msg}", kind)
                    children.append((child, [*path, key], depth + 1))
            else:
                children = [(child, [*path, index], depth + 1) for index, child in enumerate(item)]
            stack.extend(reversed(children))  # popped first to last: document order
    return None


def unstorable_replaced(value: Any) -> tuple[Any, list[Location]]:
    """``value`` (plain JSON: dicts, lists, scalars) with every NUL and lone surrogate replaced by U+FFFD, keys
    included, and the paths where something was replaced. Lists are changed in place and dicts rebuilt: pass a copy
    the caller owns."""
    root = [value]
    replaced: list[Location] = []
    stack: list[tuple[Any, Any, list[str | int]]] = [(root, 0, [])]
    while stack:
        container, key, path = stack.pop()
        item = container[key]
        if isinstance(item, str):
            if UNSTORABLE.search(item):
                container[key] = UNSTORABLE.sub(REPLACEMENT, item)
                replaced.append(path)
        elif isinstance(item, dict):
            rebuilt = {}
            for name, child in item.items():
                if isinstance(name, str) and UNSTORABLE.search(name):
                    name = UNSTORABLE.sub(REPLACEMENT, name)
                    replaced.append([*path, name])
                rebuilt[name] = child
            container[key] = rebuilt
            stack.extend((rebuilt, name, [*path, name]) for name in reversed(list(rebuilt)))
        elif isinstance(item, list):
            stack.extend((item, index, [*path, index]) for index in reversed(range(len(item))))
    return root[0], replaced


def json_storable(value: Any) -> tuple[Any, list[Location], str]:
    """``value`` as plain JSON (what JSON cannot hold written as text) with every NUL and lone surrogate replaced by
    U+FFFD, the paths where text was replaced, and its JSON text. One encoding tells whether anything is to replace:
    a surrogate is written as is, a NUL as its escape (a text spelling out that escape costs only a needless walk)."""
    encoded = json.dumps(value, ensure_ascii=False, default=str)
    if not SURROGATE.search(encoded) and "\\u0000" not in encoded:
        return json.loads(encoded), [], encoded
    # ensure_ascii: a surrogate is written as its escape and read back as it was, so that it can be replaced.
    plain, replaced = unstorable_replaced(json.loads(json.dumps(value, default=str)))
    return plain, replaced, json.dumps(plain, ensure_ascii=False)


def storable(text: str) -> str:
    """The text with every NUL and lone surrogate replaced by U+FFFD: for messages made of what a service said."""
    return UNSTORABLE.sub(REPLACEMENT, text)
