"""The language side of rules planning: clauses, action verbs, search terms and hints found in a request.

Everything here is deterministic string work: no model, no network.
"""

import re
from dataclasses import dataclass, field

from apps.flows.planning.timezones import clock_times_in, is_iana_name, place_names_removed, timezones_in
from apps.integrations.text_analysis import STOPWORDS, stem, words

# Verbs people use for the same action. A clause and a task must share an action group to match, so "ping the team"
# can become Send Notification but never Get Zendesk Ticket. The first word names the group.
ACTION_GROUPS: dict[str, tuple[str, ...]] = {
    "send": (
        "send",
        "post",
        "notify",
        "message",
        "tell",
        "alert",
        "ping",
        "inform",
        "email",
        "mail",
        "share",
        "announce",
        "broadcast",
        "dm",
        "let",
    ),
    "get": (
        "get",
        "fetch",
        "read",
        "retrieve",
        "load",
        "pull",
        "open",
        "look",
        "view",
        "check",
        "grab",
        "download",
        "see",
    ),
    "reply": ("reply", "respond", "answer", "write back", "get back"),
    "create": ("create", "open", "add", "make", "new", "file", "raise", "log", "start", "register", "submit"),
    "summarize": (
        "summarize",
        "summarise",
        "summary",
        "sum up",
        "digest",
        "condense",
        "shorten",
        "tldr",
        "recap",
        "brief",
    ),
    "classify": ("classify", "categorize", "categorise", "triage", "sort", "detect", "determine", "decide", "identify"),
    "label": ("label", "tag", "mark"),
    "comment": ("comment", "note", "annotate", "remark"),
    "search": ("search", "find", "look for", "query", "lookup", "look up"),
    "list": ("list", "show", "enumerate"),
    "move": ("move", "transfer", "shift", "relocate"),
    "update": ("update", "change", "set", "close", "solve", "resolve", "modify", "edit", "mark", "status", "reopen"),
    "format": ("format", "compose", "write", "draft", "prepare", "fill", "template", "greet"),
    "extract": ("extract", "pick", "pull out", "take", "field", "parse"),
    "record": ("record", "save", "store", "keep", "result", "output", "remember", "return"),
    "ask": ("ask", "question", "research", "look into", "find out", "inquire"),
    "generate": ("generate", "write", "draft", "compose", "create text"),
    "request": ("request", "call", "fetch", "hit", "invoke", "webhook", "get"),
    "transition": ("transition", "move", "close", "resolve", "done", "progress"),
}
# A clause starting with one of these, and naming no action, is a question: it asks to get something.
QUESTION_WORDS = frozenset({"what", "which", "who", "whom", "whose", "when", "where", "how"})
# Groups a task name's own words fall into (task names use one canonical verb each).
TASK_VERB_GROUPS = {
    "post": ("send",),
    "send": ("send",),
    "notification": ("send",),
    "reply": ("reply",),
    "list": ("list", "get"),
    "create": ("create",),
    "move": ("move",),
    "get": ("get",),
    "read": ("get",),
    "add": ("create", "comment", "label"),
    "public": ("reply",),
    "note": ("comment",),
    "internal": ("comment",),
    "update": ("update", "label"),
    "search": ("search", "get"),
    "comment": ("comment", "reply"),
    "label": ("label",),
    "format": ("format",),
    "extract": ("extract", "get"),
    "classify": ("classify", "label"),
    "summarize": ("summarize",),
    "set": ("record",),
    "result": ("record",),
    "ask": ("ask",),
    "generate": ("generate",),
    "draft": ("generate", "format"),
    "http": ("request",),
    "request": ("request",),
    "transition": ("transition",),
    "email": ("send",),
}

_STEMMED_GROUPS = {group: {stem(term) for term in terms if " " not in term} for group, terms in ACTION_GROUPS.items()}
_PHRASE_GROUPS = {group: [term for term in terms if " " in term] for group, terms in ACTION_GROUPS.items()}

SEQUENCE_MARKERS = re.compile(
    r"\b(?:and then|then|after that|afterwards|after this|next(?=\s*,)|finally|lastly|subsequently"
    r"|once (?:that is|it's) done)\b[,:]?",
    re.IGNORECASE,
)
# "then, at the same time, X and Y": X and Y run side by side after what came before.
THEN_TOGETHER = re.compile(
    r"\b(then|after that|afterwards)\s*,?\s*(?:at the same time|in parallel|simultaneously)\s*,?", re.IGNORECASE
)
PARALLEL_MARKERS = re.compile(
    r"\b(?:at the same time|in parallel|and also|meanwhile|simultaneously|as well as|while you're at it)\b[,:]?",
    re.IGNORECASE,
)
CONDITION_START = re.compile(r"^\s*(?:if|when|whenever|unless|only if|in case|provided that|once)\b", re.IGNORECASE)
LIST_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*\u2022])\s+")
SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[A-Za-z0-9\"'(#])")

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
URL = re.compile(r"https?://[^\s\"'<>)]+")
QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”|(?<![A-Za-z])'([^']{2,})'(?![A-Za-z])")
CHANNEL = re.compile(r"(?<![\w&/])#([a-z][a-z0-9_-]*)", re.IGNORECASE)
REPOSITORY = re.compile(r"(?<![\w@/.])([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)(?![\w/])")
NUMBERED_ENTITY = re.compile(
    r"\b(ticket|issue|card|message|mail|email|order|pr|pull request|thread|list|board)"
    r"\s*(?:#|number|no\.?|id)?\s*([A-Za-z0-9_-]*\d[A-Za-z0-9_-]*)\b",
    re.IGNORECASE,
)
HASH_NUMBER = re.compile(r"(?<![\w&])#(\d+)\b")
ISSUE_KEY = re.compile(r"\b([A-Z][A-Z0-9]+-\d+)\b")
PROJECT_KEY = re.compile(r"\bproject\s+([A-Z][A-Z0-9]+)\b")
TARGET_STATUS = re.compile(
    r"\b(?:to|as)\s+\"?((?:in progress|to do|done|closed|resolved|in review|solved|open|pending|on hold|hold|new"
    r"|[A-Z][\w]*(?: [A-Z][\w]*)*))\"?\s*\.?$"
)
COUNT = re.compile(r"\b(\d+)\s+(sentences?|lines?|results?|messages?|items?|channels?|boards?)\b", re.IGNORECASE)


# A quoted value announced by a word: 'titled "Login broken"', 'subject "Invoice"', 'saying "Thanks"'.
KEYED_QUOTE = re.compile(
    r"\b(titled|called|named|subject|saying|says|message|text|body|comment|query|for|path|field)\s+"
    r"(?:of\s+|as\s+|line\s+)?(?:\"([^\"]+)\"|“([^”]+)”)",
    re.IGNORECASE,
)
KEY_PARAMETERS = {
    "titled": ("title", "name", "summary"),
    "called": ("title", "name", "summary"),
    "named": ("name", "title", "summary"),
    "subject": ("subject",),
    "saying": ("body", "message", "text", "comment"),
    "says": ("body", "message", "text", "comment"),
    "message": ("message", "text", "body"),
    "text": ("text", "message", "body"),
    "body": ("body", "text", "message"),
    "comment": ("body", "comment", "text"),
    "query": ("query",),
    "for": ("query",),
    "path": ("path",),
    "field": ("path",),
}


@dataclass
class Hints:
    """Concrete values found in a piece of text, to bind to parameters."""

    keyed: dict[str, str] = field(default_factory=dict)
    emails: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    quoted: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    repositories: list[str] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    issue_keys: list[str] = field(default_factory=list)
    project_keys: list[str] = field(default_factory=list)
    target_status: str = ""
    timezones: list[str] = field(default_factory=list)
    clock_times: list[str] = field(default_factory=list)

    def search_terms(self) -> list[str]:
        """Words the hints stand for, so 'to #support' also searches for channel-posting tasks."""
        terms = []
        if self.channels:
            terms += ["channel", "slack"]
        if self.emails:
            terms += ["email"]
        if self.repositories:
            terms += ["repository", "github"]
        if self.timezones:
            terms += ["timezone"]
        terms += list(self.ids)
        return terms


def hints_in(text: str) -> Hints:
    without_urls = URL.sub(" ", text)
    without_emails = EMAIL.sub(" ", without_urls)
    hints = Hints(
        emails=EMAIL.findall(without_urls),
        urls=[url.rstrip(".,;") for url in URL.findall(text)],
        quoted=[next(group for group in match.groups() if group) for match in QUOTED.finditer(text)],
        channels=[f"#{name}" for name in CHANNEL.findall(without_emails)],
        repositories=[
            repo
            for repo in REPOSITORY.findall(without_emails)
            if not repo.replace("/", "").isdigit() and not is_iana_name(repo)
        ],
        timezones=timezones_in(without_emails),
        clock_times=clock_times_in(without_urls),
    )
    for match in KEYED_QUOTE.finditer(text):
        value = match.group(2) or match.group(3)
        for parameter in KEY_PARAMETERS[match.group(1).lower()]:
            hints.keyed.setdefault(parameter, value)
    for kind, identifier in NUMBERED_ENTITY.findall(without_emails):
        hints.ids.setdefault(kind.lower().replace("pull request", "pr"), identifier)
    for number in HASH_NUMBER.findall(without_emails):
        hints.ids.setdefault("number", number)
    hints.issue_keys = ISSUE_KEY.findall(without_emails)
    hints.project_keys = PROJECT_KEY.findall(without_emails)
    status = TARGET_STATUS.search(text.strip())
    hints.target_status = status.group(1) if status else ""
    for count, unit in COUNT.findall(text):
        hints.counts[stem(unit.lower())] = int(count)
    return hints


def terms(text: str) -> list[str]:
    """Stemmed content words, for retrieval."""
    return [stem(word) for word in words(text) if word not in STOPWORDS]


def action_groups(text: str) -> set[str]:
    """The action groups a clause's words belong to, and each word's own verb group (``verb:<stem>``), which a task
    named with a verb outside the groups (an MCP tool's "Convert Time") matches. A question with no action word
    ("What time is it in Tokyo?") asks to get something. Place names are not verbs ("New York")."""
    clause_words = words(place_names_removed(text))
    lowered = " " + " ".join(clause_words) + " "
    stems = {stem(word) for word in clause_words}
    found = {group for group, group_stems in _STEMMED_GROUPS.items() if stems & group_stems}
    found |= {group for group, phrases in _PHRASE_GROUPS.items() if any(f" {phrase} " in lowered for phrase in phrases)}
    if not found and clause_words and clause_words[0] in QUESTION_WORDS:
        found.add("get")
    if found or len(clause_words) > 1:
        found |= {f"verb:{word_stem}" for word_stem in stems if word_stem not in STOPWORDS}
    return found


def task_action_groups(task_name: str) -> set[str]:
    """The groups of the verbs in a task's name; a name with none (an MCP tool's own verb) is its first word's."""
    groups: set[str] = set()
    for word in words(task_name):
        groups.update(TASK_VERB_GROUPS.get(stem(word), ()))
        groups.update(TASK_VERB_GROUPS.get(word, ()))
    if not groups and words(task_name):
        groups.add(f"verb:{stem(words(task_name)[0])}")
    return groups


@dataclass
class Clause:
    """One piece of work the request asks for; ``parallel`` when it runs alongside the clause before it."""

    text: str
    parallel: bool = False
    condition: str = ""


TOGETHER = "\x01"


def _split_on_action_and(text: str) -> list[str]:
    """Splits "get ticket 5, summarise it and post it to #ops" into three clauses: at a comma or an "and" followed
    by an action verb. Other commas and "and"s ("as billing, bug or question") stay where they are."""
    pieces = re.split(r"(\s*,\s*(?:and\s+)?|\s+and\s+)", text)
    merged = [pieces[0]]
    for separator, part in zip(pieces[1::2], pieces[2::2], strict=True):
        first_word = words(part)[:1]
        if first_word and action_groups(first_word[0]) and first_word[0] not in {"all", "new", "note", "summary"}:
            merged.append(part)
        else:
            merged[-1] = f"{merged[-1]}{separator}{part}"
    return merged


def _strip_condition(text: str) -> tuple[str, str]:
    """'If the ticket is urgent, notify #ops' -> ('notify #ops', 'If the ticket is urgent')."""
    if not CONDITION_START.match(text):
        return text, ""
    head, separator, rest = text.partition(",")
    if separator and rest.strip():
        return rest.strip(), head.strip()
    return text, ""


def _protect_quotes(text: str) -> tuple[str, list[str]]:
    """Replaces quoted text by placeholders, so punctuation inside quotes never splits a clause."""
    quotes: list[str] = []

    def keep(match: re.Match[str]) -> str:
        quotes.append(match.group(0))
        return f"\x00{len(quotes) - 1}\x00"

    return QUOTED.sub(keep, text), quotes


def _restore_quotes(text: str, quotes: list[str]) -> str:
    return re.sub(r"\x00(\d+)\x00", lambda match: quotes[int(match.group(1))], text)


def split_clauses(request: str) -> list[Clause]:
    """Lines, list items and sentences; then sequence words ('then', 'after that') and parallel words ('at the same
    time', 'and also'); then a comma or 'and' before another action verb. Quoted text is never split. Conditions are
    cut off and kept for the report."""
    protected, quotes = _protect_quotes(request)
    protected = THEN_TOGETHER.sub(lambda match: f"{match.group(1)} {TOGETHER}", protected)
    clauses: list[Clause] = []
    for line in protected.splitlines():
        line = LIST_ITEM.sub("", line).strip()
        if not line:
            continue
        for sentence in SENTENCE_END.split(line):
            parallel_parts = PARALLEL_MARKERS.split(sentence)
            for parallel_index, parallel_part in enumerate(parallel_parts):
                for sequence_index, part in enumerate(SEQUENCE_MARKERS.split(parallel_part)):
                    together = TOGETHER in part
                    body, condition = _strip_condition(part.replace(TOGETHER, "").strip(" ,.;:"))
                    for and_index, piece in enumerate(_split_on_action_and(body)):
                        piece = _restore_quotes(piece.strip(" ,.;:"), quotes)
                        if not piece:
                            continue
                        parallel = (parallel_index > 0 and sequence_index == 0 and and_index == 0) or (
                            together and and_index > 0
                        )
                        kept = _restore_quotes(condition, quotes) if and_index == 0 else ""
                        clauses.append(Clause(piece, parallel, kept))
    return clauses


def is_filler(clause: str) -> bool:
    """Politeness and empty connective text that asks for nothing ('Thanks!', 'please')."""
    return not [word for word in words(clause) if word not in STOPWORDS and word not in {"ok", "okay", "cheers"}]
