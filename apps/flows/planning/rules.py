"""The ``rules`` planner: offline, deterministic, no model.

Steps: split the request into clauses; for each, keep the task definitions whose action matches the clause's verbs
and rank them by BM25 over names, descriptions and parameter docs (with a bonus for integrations the request
mentions); order the steps (in sequence, or side by side after "at the same time"); bind what the text gives
(emails, quoted text, #channels, ids, URLs, owner/repo, counts) and what earlier steps and the request metadata
provide. A clause nothing fits, or a required parameter with no source, is a PlanningError naming it: never a wrong
flow in place of an error.
"""

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from apps.flows.planning.catalogue import Catalogue, CatalogueEntry
from apps.flows.planning.language import Clause, Hints, action_groups, hints_in, is_filler, split_clauses, terms
from apps.integrations.text_analysis import stem, words

PLANNER_NAME = "rules"
# Below this score a clause is not taken to mean the task, whatever its verb.
MIN_SCORE = 1.0
# How many of the best-ranked tasks are tried for a clause before reporting what the best one lacks.
CANDIDATES_TRIED = 3
# Words that point at an integration without naming it.
INTEGRATION_WORDS = {
    "zendesk": ("zendesk", "ticket", "requester", "helpdesk", "support ticket"),
    "gmail": ("gmail", "mail", "email", "inbox", "e-mail"),
    "slack": ("slack", "channel", "thread", "workspace"),
    "github": ("github", "issue", "repo", "repository", "pull request", "pr"),
    "trello": ("trello", "card", "board"),
    "jira": ("jira", "atlassian"),
    "llm": ("llm", "ai", "model", "gpt", "chatgpt", "language model"),
    "perplexity": ("perplexity", "web search", "research"),
    "http": ("http", "https", "url", "endpoint", "api", "webhook"),
    "smtp": ("smtp",),
}
DRAFTING = re.compile(r"\b(?:draft|prepare|compose)\b", re.IGNORECASE)
QUOTED_TEXT = re.compile(r"\"[^\"]*\"|“[^”]*”")
UNKEYED_CONTENT = ("message", "text", "body", "comment", "template", "query", "path", "desc", "question", "prompt")
KEYED_CONTENT = ("title", "name", "subject", "summary")
CONTENT_PARAMETERS = UNKEYED_CONTENT + KEYED_CONTENT
LABEL_LIST = re.compile(
    r"\b(?:as|into|between|among|labels?)\s+((?:[\w-]+\s*,\s*)*[\w-]+\s*,?\s+(?:or|and)\s+[\w-]+)", re.IGNORECASE
)
# "tag it as urgent", "label issue 4 with bug and ui": the labels come after as/with.
TAGGING = re.compile(r"\b(?:tag|label)\w*\b.*?\b(?:as|with)\s+([\w-]+(?:\s*(?:,|\band\b)\s*[\w-]+)*)", re.IGNORECASE)


class PlanningError(Exception):
    """The request cannot be planned; ``problems`` says which parts and why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class PlannedStep:
    entry: CatalogueEntry
    name: str
    instruction: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class PlanDraft:
    """A planned flow before validation: steps in order, edges by step position, and notes for the user."""

    name: str
    steps: list[PlannedStep]
    edges: list[tuple[int, int]]
    notes: list[str]
    planner: str = PLANNER_NAME


def _mentioned_integrations(text: str) -> set[str]:
    lowered = f" {text.lower()} "
    mentioned = {
        short_name
        for short_name, cues in INTEGRATION_WORDS.items()
        if any(re.search(rf"(?<![\w#]){re.escape(cue)}s?(?!\w)", lowered) for cue in cues)
    }
    if "#" in text and re.search(r"(?<![\w&])#[a-z]", text, re.IGNORECASE):
        mentioned.add("slack")
    return mentioned


def _content_terms(clause: Clause) -> list[str]:
    """What the clause is about, besides its verbs, quoted text and label lists."""
    text = QUOTED_TEXT.sub(" ", LABEL_LIST.sub(" ", clause.text))
    return [term for term in terms(text) if not action_groups(term)]


def _candidates(
    clause: Clause, catalogue: Catalogue, request_integrations: set[str], vocabulary: set[str]
) -> list[CatalogueEntry]:
    """Tasks that could mean the clause, best first; empty when nothing really fits."""
    groups = action_groups(clause.text)
    if not groups:
        return []
    hints = hints_in(clause.text)
    query = terms(clause.text) + terms(" ".join(hints.search_terms()))
    content = _content_terms(clause)
    if content and not hints.search_terms() and not any(term in vocabulary for term in content):
        return []  # everything the clause is about is unknown to the catalogue ("send a fax to my lawyer")
    first_verb = next((action_groups(word) for word in words(clause.text) if action_groups(word)), set())
    clause_integrations = _mentioned_integrations(clause.text)
    # "Draft a reply" prepares text; it must not pick the task that sends one.
    preparing_only = bool(DRAFTING.search(clause.text))
    scored = []
    for entry, score in catalogue.rank(query):
        if not entry.action_groups & groups or (preparing_only and entry.side_effect):
            continue
        if entry.action_groups & first_verb:
            score += 2.0
        if entry.integration_short_name in clause_integrations:
            score += 2.0
        elif entry.integration_short_name in request_integrations:
            score += 1.0
        elif clause_integrations and entry.integration_short_name != "core":
            score -= 1.0
        # A task that takes the values the clause gives (an id, a channel, a repo) is likely the one meant.
        takers = quote_takers_of(entry.parameters)
        score += 1.5 * sum(
            1 for parameter in entry.parameters if _from_hints(parameter, hints, False, clause.text, takers) is not None
        )
        scored.append((score, entry))
    scored.sort(key=lambda item: -item[0])
    return [entry for score, entry in scored if score >= MIN_SCORE]


def _layers(clauses: list[Clause]) -> list[list[int]]:
    """Steps grouped into layers: a parallel clause joins the layer of the clause before it."""
    layers: list[list[int]] = []
    for position, clause in enumerate(clauses):
        if clause.parallel and layers:
            layers[-1].append(position)
        else:
            layers.append([position])
    return layers


def _id_for(name: str, hints: Hints) -> str | None:
    lowered = name.lower()
    for kind in ("ticket", "issue", "card", "message", "board", "list", "pr", "thread", "order"):
        if lowered.startswith(kind) or (kind == "issue" and lowered in {"issue_number", "number"}):
            for key in (kind, "mail" if kind == "message" else "", "email" if kind == "message" else ""):
                if key and key in hints.ids:
                    return hints.ids[key]
            if kind in ("ticket", "issue") and "number" in hints.ids:
                return hints.ids["number"]
    return None


def quote_takers_of(parameters: tuple[dict[str, Any], ...]) -> set[str]:
    """Which parameters an unannounced quoted text may fill: the message-like ones; a title, name or subject only
    when the task needs no message-like value (a card's name, an issue's title)."""
    names = {parameter["name"] for parameter in parameters}
    bodies = {name for name in names if name in UNKEYED_CONTENT}
    if any(parameter["name"] in bodies and not parameter["optional"] for parameter in parameters):
        return bodies
    return bodies | {name for name in names if name in KEYED_CONTENT}


def _from_hints(
    parameter: dict[str, Any],
    hints: Hints,
    content_taken: bool,
    clause_text: str,
    quote_takers: frozenset[str] | set[str] = frozenset(),
) -> Any:
    """A value for the parameter from the text's hints, or None."""
    name, data_type = parameter["name"].lower(), parameter["data_type"]
    if name in hints.keyed:
        return hints.keyed[name]
    if name == "cc":
        return None  # a copy is only ever asked for by name; the first address is the recipient
    if data_type == "email" or name in {"recipient", "to", "email"}:
        if hints.emails:
            return hints.emails[0]
        if name == "recipient" and hints.channels:
            return hints.channels[0]
    if "channel" in name and hints.channels:
        return hints.channels[0]
    if name in {"repo", "repository"} and hints.repositories:
        return hints.repositories[0]
    if name == "issue_key" and hints.issue_keys:
        return hints.issue_keys[0]
    if name == "project_key" and hints.project_keys:
        return hints.project_keys[0]
    if "timezone" in name or name in {"tz", "zone", "time_zone"}:
        # "from Tokyo to London": the source is the first zone named, the target the last of two or more.
        targeted = name.startswith(("target", "to_", "destination"))
        if targeted:
            return hints.timezones[-1] if len(hints.timezones) > 1 else None
        return hints.timezones[0] if hints.timezones else None
    if name == "time" and data_type == "string" and hints.clock_times:
        return hints.clock_times[0]
    if name in {"transition", "status"} and hints.target_status:
        return hints.target_status
    if data_type == "url" or name.endswith("url"):
        return hints.urls[0] if hints.urls else None
    if name.endswith("_id") or name in {"issue_number", "number"}:
        identifier = _id_for(name, hints)
        if identifier is not None:
            return int(identifier) if data_type == "int" and identifier.isdigit() else identifier
    if data_type == "int":
        for unit, count in hints.counts.items():
            if unit in name or (name in {"limit", "max_results"} and unit in {"result", "message", "item", "channel"}):
                return count
    if data_type == "list" and name == "labels" and LABEL_LIST.search(clause_text):
        choices = LABEL_LIST.search(clause_text).group(1)  # type: ignore[union-attr]
        return [item.strip() for item in re.split(r",|\bor\b|\band\b", choices) if item.strip()]
    tagging = TAGGING.search(clause_text) if data_type == "list" and name in {"labels", "tags"} else None
    if tagging:
        return [item.strip() for item in re.split(r",|\band\b", tagging.group(1)) if item.strip()]
    if data_type in ("text", "string") and not content_taken and hints.quoted and name in quote_takers:
        return hints.quoted[0]
    return None


def _upstream_binding(
    parameter: dict[str, Any], position: int, steps: list[PlannedStep], predecessors: dict[int, list[int]]
) -> str | None:
    """A template reading the value from an earlier step: same-named output first, then the main text output."""
    direct = predecessors[position]
    if parameter["data_type"] == "text" and direct:
        # Prose is best, then any text, then whatever the step produced (a list of messages becomes its JSON text).
        outputs = steps[direct[0]].entry.outputs
        prose = [output for output in outputs if output["data_type"] == "text"]
        if prose:
            return f"{{{{ steps.{direct[0]}.result.{prose[0]['name']} }}}}"
    for ancestor in _ancestors(position, predecessors):
        if any(output["name"] == parameter["name"] for output in steps[ancestor].entry.outputs):
            return f"{{{{ steps.{ancestor}.result.{parameter['name']} }}}}"
    if parameter["data_type"] == "text" and direct:
        outputs = steps[direct[0]].entry.outputs
        textual = [output for output in outputs if output["data_type"] == "string"]
        chosen = (textual or list(outputs))[:1]
        if chosen:
            return f"{{{{ steps.{direct[0]}.result.{chosen[0]['name']} }}}}"
    if parameter["data_type"] in ("json", "dict") and direct:
        return f"{{{{ steps.{direct[0]}.result }}}}"
    return None


def _mentioned_binding(
    parameter: dict[str, Any],
    clause: Clause,
    position: int,
    steps: list[PlannedStep],
    predecessors: dict[int, list[int]],
    metadata_keys: set[str],
) -> str | None:
    """'Summarize the ticket description' with a 'description' in the metadata, or 'post its subject' after a step
    that outputs 'subject': the value the clause names."""
    if parameter["data_type"] not in ("text", "string", "list", "json", "dict", "email"):
        return None
    mentioned = set(words(clause.text))
    for key in sorted(metadata_keys):
        if key.lower() in mentioned and key != parameter["name"]:
            return f"{{{{ request.metadata.{key} }}}}"
    for ancestor in sorted(_ancestors(position, predecessors), reverse=True):
        for output in steps[ancestor].entry.outputs:
            if output["name"].lower() in mentioned or output["name"].replace("_", " ") in clause.text.lower():
                return f"{{{{ steps.{ancestor}.result.{output['name']} }}}}"
    return None


def _ancestors(position: int, predecessors: dict[int, list[int]]) -> list[int]:
    found: list[int] = []
    stack = list(predecessors[position])
    while stack:
        current = stack.pop(0)
        if current not in found:
            found.append(current)
            stack.extend(predecessors[current])
    return found


def _bind_step(
    position: int,
    steps: list[PlannedStep],
    clause: Clause,
    predecessors: dict[int, list[int]],
    request_hints: Hints,
    metadata_keys: set[str],
) -> list[str]:
    """Fills the step's bindings; returns the problems of required parameters nothing can provide."""
    step = steps[position]
    step.parameters = {}
    clause_hints = hints_in(clause.text)
    takers = quote_takers_of(step.entry.parameters)
    content_taken = False
    problems = []
    for parameter in sorted(step.entry.parameters, key=lambda parameter: parameter["position"]):
        name = parameter["name"]
        required = not parameter["optional"]
        value = _from_hints(parameter, clause_hints, content_taken, clause.text, takers)
        if value is None and name in metadata_keys:
            value = f"{{{{ request.metadata.{name} }}}}"
        elif value is None and required:
            # Optional parameters are only bound from what the clause says; required ones also from what the clause
            # names, from earlier steps, then from the rest of the request (a ticket id said once serves every step).
            value = _mentioned_binding(parameter, clause, position, steps, predecessors, metadata_keys)
            if value is None:
                value = _upstream_binding(parameter, position, steps, predecessors)
            if value is None:
                value = _from_hints(parameter, request_hints, True, "")
        if value is not None:
            step.parameters[name] = value
            content_taken = content_taken or name in takers
        elif required and parameter.get("default") is None:
            problems.append(
                f"Step {position} ('{step.entry.task_name}', for '{clause.text}') has no value for '{name}' "
                f"({parameter['doc_string']}): say it in the request or give it in the request metadata."
            )
    return problems


def predecessors_of(step_count: int, edges: list[tuple[int, int]]) -> dict[int, list[int]]:
    predecessors: dict[int, list[int]] = {position: [] for position in range(step_count)}
    for source, target in edges:
        predecessors[target].append(source)
    return predecessors


def unprovided_parameters(steps: list[PlannedStep], edges: list[tuple[int, int]], metadata_keys: set[str]) -> list[str]:
    """The meaning check of a draft from any planner: every required parameter of every step has a binding, a
    request metadata key of its name, an earlier step that can provide it, or a default."""
    predecessors = predecessors_of(len(steps), edges)
    problems = []
    for position, step in enumerate(steps):
        for parameter in step.entry.parameters:
            name = parameter["name"]
            if parameter["optional"] or parameter.get("default") is not None or name in step.parameters:
                continue
            if name in metadata_keys or _upstream_binding(parameter, position, steps, predecessors) is not None:
                continue
            problems.append(f"Step {position} ('{step.entry.task_name}') has no source for its required '{name}'.")
    return problems


def plan(*, instructions: str, name: str, metadata_keys: set[str], catalogue: Catalogue) -> PlanDraft:
    """Plans a flow for the request; raises PlanningError naming the clauses or parameters it cannot cover."""
    clauses = [clause for clause in split_clauses(instructions) if not is_filler(clause.text)]
    if not clauses:
        raise PlanningError(["The request asks for nothing a task can do."])
    request_integrations = _mentioned_integrations(instructions)
    vocabulary = catalogue.vocabulary() | {stem(cue) for cues in INTEGRATION_WORDS.values() for cue in cues}
    candidates = [_candidates(clause, catalogue, request_integrations, vocabulary) for clause in clauses]
    unmatched = [clause.text for clause, found in zip(clauses, candidates, strict=True) if not found]
    if unmatched:
        raise PlanningError([f"No task in the catalogue fits '{text}'." for text in unmatched])
    layers = _layers(clauses)
    edges = [(source, target) for before, after in itertools.pairwise(layers) for source in before for target in after]
    predecessors = predecessors_of(len(clauses), edges)
    request_hints = hints_in(instructions)
    steps: list[PlannedStep] = []
    problems: list[str] = []
    for position, (clause, found) in enumerate(zip(clauses, candidates, strict=True)):
        # The best-ranked of the top candidates whose required parameters can all be provided; else the best one,
        # whose missing parameters are then reported.
        for rank, entry in enumerate(found[:CANDIDATES_TRIED]):
            steps[position:] = [PlannedStep(entry=entry, name=entry.task_name, instruction=clause.text)]
            step_problems = _bind_step(position, steps, clause, predecessors, request_hints, metadata_keys)
            if not step_problems:
                break
            if rank == 0:
                first_problems = step_problems
        else:
            steps[position:] = [PlannedStep(entry=found[0], name=found[0].task_name, instruction=clause.text)]
            _bind_step(position, steps, clause, predecessors, request_hints, metadata_keys)
            problems += first_problems
    if problems:
        raise PlanningError(problems)
    notes = [
        f"The condition '{clause.condition}' cannot be expressed in a flow: step {position} "
        f"('{steps[position].entry.task_name}') always runs."
        for position, clause in enumerate(clauses)
        if clause.condition
    ]
    return PlanDraft(name=name or clauses[0].text[:120], steps=steps, edges=edges, notes=notes)
