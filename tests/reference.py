"""The original API's documentation as test data: every example call of the reference and the fuller docs, with the
answer each one documents.

``/work/shared/reference`` (beside the checkout as ``shared/``, or where ``NEENA_REFERENCE_DIR`` says) holds
``neena-api-reference.md``, the API's first contract, and ``neena-docs/*.md``, its fuller public docs. Each endpoint
section (a ``## `` heading) shows a ``curl`` call and, for most, the JSON it answers. The docs are prose, not a
schema: their JSON has trailing commas, ``// ...`` comments and ``[...]`` elisions, and their URLs are written as
``api.neena.io/flows`` without the ``/api/v1`` prefix every path has here. This module reads them as they are.
"""

import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPOSITORY = Path(__file__).resolve().parent.parent


def reference_dir() -> Path | None:
    """Where the reference lives: NEENA_REFERENCE_DIR, else ``shared/reference`` beside the checkout or above it."""
    configured = os.environ.get("NEENA_REFERENCE_DIR")
    candidates = [Path(configured)] if configured else []
    candidates += [parent / "shared" / "reference" for parent in (REPOSITORY.parent, *REPOSITORY.parents)]
    return next((path for path in candidates if (path / "neena-api-reference.md").is_file()), None)


@dataclass(frozen=True)
class Example:
    """One documented call: where it is written, what it sends, and the JSON it documents as the answer (None when the
    section shows none, or shows elided JSON)."""

    source: str
    title: str
    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: Any
    body_is_elided: bool
    answer: Any

    @property
    def id(self) -> str:
        return f"{self.source}: {self.title}"


_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def loose_json(text: str) -> Any:
    """The docs' JSON: ``// ...`` comments and trailing commas dropped. Raises ValueError for ``[...]`` elisions."""
    text = re.sub(r"^\s*//.*$", "", text, flags=re.M)
    text = re.sub(r",(\s*[}\]])", r"\1", text)
    text = text.strip().rstrip(",")
    return json.loads(text)


def _curl(command: str) -> tuple[str, str, list[tuple[str, str]], str | None]:
    """(method, URL, headers, data) of a documented ``curl`` command."""
    words = shlex.split(command.replace("\\\n", " "))
    method, url, headers, data = "GET", "", [], None
    iterator = iter(words[1:])
    for word in iterator:
        if word == "-X":
            method = next(iterator)
        elif word == "-H":
            name, _, value = next(iterator).partition(":")
            headers.append((name.strip(), value.strip()))
        elif word == "-d":
            data = next(iterator)
        elif not word.startswith("-"):
            url = word
    return method, url, headers, data


def _api_path(url: str) -> tuple[str, str]:
    """The path under ``/api/v1`` and the query string of a documented URL (``api.neena.io/flows?id=x``)."""
    parts = urlsplit(url if "://" in url else f"https://{url}")
    path = parts.path
    if not path.startswith("/api/v1"):
        path = "/api/v1" + path
    return path, parts.query


def examples() -> list[Example]:
    """Every documented call of the reference and the fuller docs, in the order written."""
    root = reference_dir()
    if root is None:
        return []
    found = []
    for document in [root / "neena-api-reference.md", *sorted((root / "neena-docs").glob("*.md"))]:
        text = document.read_text(encoding="utf-8")
        for section in re.split(r"^## ", text, flags=re.M)[1:]:
            title = section.splitlines()[0].strip()
            blocks = _FENCE.findall(section)
            shell = next((code for language, code in blocks if language == "shell"), None)
            if shell is None:
                continue
            method, url, headers, data = _curl(shell)
            answer = None
            for language, code in blocks:
                if language == "json":
                    try:
                        answer = loose_json(code)
                    except ValueError:
                        answer = None
                    break
            body, elided = None, False
            if data is not None:
                try:
                    body = loose_json(data)
                except ValueError:
                    elided = True
            path, query = _api_path(url)
            found.append(
                Example(
                    source=str(document.relative_to(root)),
                    title=title,
                    method=method,
                    path=path,
                    query=query,
                    headers=tuple(headers),
                    body=body,
                    body_is_elided=elided,
                    answer=answer,
                )
            )
    return found


# Fields whose documented value is the example's own data, not a shape: only their presence is compared.
FREE_FORM_FIELDS = frozenset({"request_metadata"})


def missing_fields(documented: Any, answered: Any, where: str = "") -> list[str]:
    """The documented field names the answer lacks, as paths (``task_runs[0].task_prep_answer``), at every depth.

    A list is compared by its first item (when the answer has one); a field whose documented value is an object is
    compared inside too, unless the answer's value is null (a run without a result, an optional object) or the field
    holds the client's own data (``FREE_FORM_FIELDS``).
    """
    if isinstance(documented, dict):
        if not isinstance(answered, dict):
            return [] if answered is None else [f"{where or '.'} (not an object)"]
        problems = []
        for name, value in documented.items():
            if name not in answered:
                problems.append(f"{where}.{name}" if where else name)
            elif name not in FREE_FORM_FIELDS:
                problems += missing_fields(value, answered[name], f"{where}.{name}" if where else name)
        return problems
    if isinstance(documented, list) and documented and isinstance(answered, list) and answered:
        return missing_fields(documented[0], answered[0], f"{where}[0]")
    return []
