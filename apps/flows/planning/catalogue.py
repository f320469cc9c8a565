"""The task catalogue as the planner sees it, with a BM25 index for ranked text retrieval.

Built once per catalogue version and reused, so planning a request costs a few dictionary look-ups per clause term,
growing linearly with the number of definitions that share those terms.
"""

import math
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from apps.flows.planning.language import task_action_groups, terms


def _param_rows(params: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": param.name,
            "data_type": str(param.data_type),
            "position": position,
            "doc_string": param.doc_string,
            "optional": param.optional,
            "default": param.default,
        }
        for position, param in enumerate(params, start=1)
    ]


# How much each part of a definition counts when matching a clause.
FIELD_WEIGHTS = {"task_name": 3.0, "integration": 2.0, "description": 1.0, "parameters": 0.5}
K1, B = 1.2, 0.75


@dataclass(frozen=True)
class CatalogueEntry:
    """A live task definition, reduced to what planning needs."""

    id: UUID
    task_name: str
    integration_short_name: str
    integration_name: str
    description: str
    parameters: tuple[dict[str, Any], ...]
    outputs: tuple[dict[str, Any], ...]
    side_effect: bool = False

    @property
    def action_groups(self) -> set[str]:
        return task_action_groups(self.task_name)

    def weighted_terms(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        parts = {
            "task_name": self.task_name,
            "integration": f"{self.integration_name} {self.integration_short_name}",
            "description": self.description,
            "parameters": " ".join(f"{p['name'].replace('_', ' ')} {p['doc_string']}" for p in self.parameters),
        }
        for part, text in parts.items():
            for term in terms(text):
                counts[term] += FIELD_WEIGHTS[part]  # type: ignore[assignment]
        return counts


@dataclass
class Catalogue:
    """The entries and their inverted index."""

    entries: list[CatalogueEntry]
    _postings: dict[str, list[tuple[int, float]]] = field(default_factory=dict, init=False)
    _lengths: list[float] = field(default_factory=list, init=False)
    _idf: dict[str, float] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for position, entry in enumerate(self.entries):
            counts = entry.weighted_terms()
            self._lengths.append(sum(counts.values()))
            for term, weight in counts.items():
                postings[term].append((position, weight))
        self._postings = dict(postings)
        documents = max(len(self.entries), 1)
        self._idf = {
            term: math.log(1 + (documents - len(hits) + 0.5) / (len(hits) + 0.5)) for term, hits in postings.items()
        }
        self._average_length = (sum(self._lengths) / documents) if self.entries else 1.0

    def vocabulary(self) -> set[str]:
        """Every term some definition contains."""
        return set(self._postings)

    def rank(self, query_terms: list[str]) -> list[tuple[CatalogueEntry, float]]:
        """Entries sharing a term with the query, best BM25 score first (ties: catalogue order)."""
        scores: dict[int, float] = defaultdict(float)
        for term in set(query_terms):
            idf = self._idf.get(term)
            if idf is None:
                continue
            for position, frequency in self._postings[term]:
                normaliser = K1 * (1 - B + B * self._lengths[position] / self._average_length)
                scores[position] += idf * frequency * (K1 + 1) / (frequency + normaliser)
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        return [(self.entries[position], score) for position, score in ranked]

    @classmethod
    def from_specs(cls, specs: Any) -> "Catalogue":
        """A catalogue straight from connector declarations, with stable made-up ids (benchmarks, no database)."""
        return cls(
            [
                CatalogueEntry(
                    id=uuid.uuid5(uuid.NAMESPACE_URL, f"neena:{spec.short_name}:{task.python_method_name}"),
                    task_name=task.task_name,
                    integration_short_name=spec.short_name,
                    integration_name=spec.name,
                    description=task.description,
                    parameters=tuple(_param_rows(task.parameters)),
                    outputs=tuple(_param_rows(task.outputs)),
                    side_effect=task.side_effect,
                )
                for spec in specs
                for task in spec.tasks
            ]
        )

    @classmethod
    def from_definitions(cls, definitions: Any) -> "Catalogue":
        return cls(
            [
                CatalogueEntry(
                    id=definition.id,
                    task_name=definition.task_name,
                    integration_short_name=definition.integration.short_name,
                    integration_name=definition.integration.name,
                    description=definition.description,
                    parameters=tuple(definition.parameters),
                    outputs=tuple(definition.output_parameters),
                    side_effect=definition.side_effect,
                )
                for definition in definitions
            ]
        )
