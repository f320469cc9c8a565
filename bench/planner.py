"""Planning benchmark: accuracy on the labelled requests and planning latency against catalogue size.

Run with ``make bench-planner``. Accuracy is measured on the real catalogue (the connector declarations); latency
on the real catalogue and on synthetic catalogues of 100 to 1,000 definitions (the real ones, repeated with made-up
vocabulary), to show planning time grows linearly with the catalogue.
"""

import contextlib
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REQUESTS = Path(__file__).with_name("planner") / "requests.yaml"
HOLDOUT = Path(__file__).with_name("planner") / "holdout.yaml"


@dataclass
class Report:
    total: int = 0
    exact: int = 0
    shape: int = 0
    errors_expected: int = 0
    errors_correct: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.exact / self.total if self.total else 0.0


def load_cases(path: Path = REQUESTS) -> list[dict[str, Any]]:
    return list(yaml.safe_load(path.read_text()))


def evaluate(cases: list[dict[str, Any]], catalogue: Any) -> Report:
    """Plans every case; a case is exact when steps, their order and the dependencies all match the label."""
    from apps.flows.planning.rules import PlanningError, plan

    report = Report()
    for case in cases:
        report.total += 1
        try:
            draft = plan(
                instructions=case["request"], name="", metadata_keys=set(case.get("metadata", [])), catalogue=catalogue
            )
        except PlanningError as error:
            if case.get("error"):
                report.errors_expected += 1
                report.errors_correct += 1
                report.exact += 1
                report.shape += 1
            else:
                report.failures.append(f"unexpected 422: {case['request']!r}: {error.problems}")
            continue
        if case.get("error"):
            report.errors_expected += 1
            report.failures.append(f"planned instead of 422: {case['request']!r}: {[s.name for s in draft.steps]}")
            continue
        steps = [step.entry.task_name for step in draft.steps]
        edges = sorted(tuple(edge) for edge in draft.edges)
        expected_edges = sorted(tuple(edge) for edge in case.get("edges", []))
        same_shape = edges == expected_edges and len(steps) == len(case["steps"])
        report.shape += same_shape
        if steps == case["steps"] and same_shape:
            report.exact += 1
        else:
            report.failures.append(f"{case['request']!r}: got {steps} {edges}, want {case['steps']} {expected_edges}")
    return report


def synthetic_catalogue(size: int) -> Any:
    """The real entries plus made-up ones up to ``size``, with their own vocabulary, like a large real catalogue."""
    import dataclasses
    import uuid

    from apps.flows.planning.catalogue import Catalogue
    from apps.integrations.connectors import connector_specs

    real = Catalogue.from_specs(connector_specs()).entries
    entries = list(real)
    number = 0
    while len(entries) < size:
        base = real[number % len(real)]
        word = f"widget{number}"
        entries.append(
            dataclasses.replace(
                base,
                id=uuid.uuid5(uuid.NAMESPACE_URL, f"synthetic:{number}"),
                task_name=f"{base.task_name} {word.title()}",
                integration_short_name=f"{base.integration_short_name}{number}",
                integration_name=f"{base.integration_name} {word.title()}",
                description=f"{base.description} For the {word} system.",
            )
        )
        number += 1
    return Catalogue(entries[:size])


def latency_ms(cases: list[dict[str, Any]], catalogue: Any, repeat: int = 3) -> list[float]:
    from apps.flows.planning.rules import PlanningError, plan

    timings = []
    for _ in range(repeat):
        for case in cases:
            started = time.perf_counter()
            with contextlib.suppress(PlanningError):
                plan(
                    instructions=case["request"],
                    name="",
                    metadata_keys=set(case.get("metadata", [])),
                    catalogue=catalogue,
                )
            timings.append((time.perf_counter() - started) * 1000)
    return timings


def main() -> int:
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neena.settings.test")
    django.setup()
    from apps.flows.planning.catalogue import Catalogue
    from apps.integrations.connectors import connector_specs

    cases = load_cases()
    catalogue = Catalogue.from_specs(connector_specs())
    report = evaluate(cases, catalogue)
    planned = report.total - report.errors_expected
    print(f"planner accuracy: exact {report.exact}/{report.total} = {report.accuracy:.1%}")
    print(f"planner dependency shape: {report.shape}/{report.total} = {report.shape / report.total:.1%}")
    print(f"planner correct 422s: {report.errors_correct}/{report.errors_expected} (and {planned} requests to plan)")
    for failure in report.failures:
        print(f"  miss: {failure}")
    holdout = evaluate(load_cases(HOLDOUT), catalogue)
    print(
        "planner accuracy, held-out requests (never tuned on): "
        f"exact {holdout.exact}/{holdout.total} = {holdout.accuracy:.1%}"
    )
    for failure in holdout.failures:
        print(f"  held-out miss: {failure}")

    timings = latency_ms(cases, catalogue)
    print(
        f"planner latency, real catalogue ({len(catalogue.entries)} definitions): "
        f"median {statistics.median(timings):.2f} ms, p95 {statistics.quantiles(timings, n=20)[-1]:.2f} ms"
    )
    medians = {}
    for size in (100, 250, 500, 1000):
        build_started = time.perf_counter()
        synthetic = synthetic_catalogue(size)
        build_ms = (time.perf_counter() - build_started) * 1000
        medians[size] = statistics.median(latency_ms(cases, synthetic, repeat=2))
        print(f"planner latency, {size} definitions: median {medians[size]:.2f} ms (index built in {build_ms:.0f} ms)")
    print(f"planner growth 100 -> 1000 definitions: {medians[1000] / medians[100]:.2f}x for 10x the catalogue")
    return 0 if report.accuracy >= 0.9 and medians[500] < 20 else 1


if __name__ == "__main__":
    sys.exit(main())
