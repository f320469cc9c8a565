"""DAG validation and deterministic topological order, in time linear in steps plus edges.

Pure functions over step indices and (source, target) edges; they know nothing of models or HTTP, so the API, the
planner and the benchmarks share them.
"""

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Edge = tuple[int, int]


@dataclass(frozen=True)
class DagProblem:
    """A structural problem: ``where`` is ("task_operations", position, "index") or ("dependencies", position, ...)."""

    where: tuple[str | int, ...]
    message: str
    code: str


def _index_problems(indices: Sequence[int]) -> list[DagProblem]:
    problems = []
    seen: dict[int, int] = {}
    for position, index in enumerate(indices):
        if index in seen:
            problems.append(
                DagProblem(
                    ("task_operations", position, "index"),
                    f"Index {index} is used by task operation {seen[index]} already.",
                    "dag.duplicate_index",
                )
            )
        else:
            seen[index] = position
    missing = sorted(set(range(len(indices))) - set(indices))
    if missing and not problems:
        problems.append(
            DagProblem(
                ("task_operations",),
                f"Indices must be 0..{len(indices) - 1} without gaps; missing {', '.join(map(str, missing[:20]))}.",
                "dag.index_gap",
            )
        )
    return problems


def _edge_problems(step_count: int, edges: Sequence[Edge]) -> list[DagProblem]:
    problems = []
    seen: dict[Edge, int] = {}
    for position, (source, target) in enumerate(edges):
        for end, value in (("source_task_operation", source), ("target_task_operation", target)):
            if not 0 <= value < step_count:
                problems.append(
                    DagProblem(
                        ("dependencies", position, end),
                        f"No task operation has index {value}; indices go from 0 to {step_count - 1}.",
                        "dag.index_out_of_range",
                    )
                )
        if source == target:
            problems.append(
                DagProblem(("dependencies", position), f"Task operation {source} depends on itself.", "dag.self_loop")
            )
        elif (source, target) in seen:
            problems.append(
                DagProblem(
                    ("dependencies", position),
                    f"The dependency {source} -> {target} repeats dependency {seen[(source, target)]}.",
                    "dag.duplicate_edge",
                )
            )
        else:
            seen[(source, target)] = position
    return problems


def topological_order(step_count: int, edges: Sequence[Edge]) -> tuple[list[int], list[int]]:
    """Kahn's algorithm, always taking the smallest ready index: the same flow always yields the same order.

    Returns (order, leftover); ``leftover`` is non-empty exactly when the edges contain a cycle.
    """
    successors: list[list[int]] = [[] for _ in range(step_count)]
    indegree = [0] * step_count
    for source, target in set(edges):
        successors[source].append(target)
        indegree[target] += 1
    ready = [index for index in range(step_count) if indegree[index] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for successor in successors[index]:
            indegree[successor] -= 1
            if indegree[successor] == 0:
                heapq.heappush(ready, successor)
    leftover = [index for index in range(step_count) if indegree[index] > 0]
    return order, leftover


def _find_cycle(step_count: int, edges: Sequence[Edge], candidates: Sequence[int]) -> list[int]:
    """One cycle among the steps Kahn's algorithm could not order, for the error message (iterative DFS)."""
    members = set(candidates)
    successors: dict[int, list[int]] = {index: [] for index in members}
    for source, target in edges:
        if source in members and target in members:
            successors[source].append(target)
    state: dict[int, int] = {}  # 1 = on the current path, 2 = finished
    for start in sorted(members):
        if start in state:
            continue
        path, iterators = [start], [iter(successors[start])]
        state[start] = 1
        while path:
            successor = next(iterators[-1], None)
            if successor is None:
                state[path.pop()] = 2
                iterators.pop()
            elif state.get(successor) == 1:
                return [*path[path.index(successor) :], successor]
            elif successor not in state:
                state[successor] = 1
                path.append(successor)
                iterators.append(iter(successors[successor]))
    return []


def validate_dag(indices: Sequence[int], edges: Sequence[Edge]) -> tuple[list[DagProblem], list[int]]:
    """Checks indices (unique, 0..n-1) and edges (in range, no self-loop, no duplicate, no cycle).

    Returns (problems, order) where ``order`` is the topological order of the indices when there is no problem.
    """
    problems = _index_problems(indices) + _edge_problems(len(indices), edges)
    if problems:
        return problems, []
    order, leftover = topological_order(len(indices), edges)
    if leftover:
        cycle = _find_cycle(len(indices), edges, leftover)
        return [
            DagProblem(
                ("dependencies",), f"The dependencies form a cycle: {' -> '.join(map(str, cycle))}.", "dag.cycle"
            )
        ], []
    return [], order


def ancestors(step_count: int, edges: Sequence[Edge], index: int) -> set[int]:
    """Every step that runs before ``index`` (transitively)."""
    predecessors: list[list[int]] = [[] for _ in range(step_count)]
    for source, target in edges:
        predecessors[target].append(source)
    found: set[int] = set()
    stack = list(predecessors[index])
    while stack:
        current = stack.pop()
        if current not in found:
            found.add(current)
            stack.extend(predecessors[current])
    return found


def descendants(edges: Iterable[Edge], roots: Iterable[int]) -> set[int]:
    """Every step that runs after one of ``roots`` (transitively), the roots themselves excluded unless reached."""
    successors: dict[int, list[int]] = {}
    for source, target in edges:
        successors.setdefault(source, []).append(target)
    found: set[int] = set()
    stack = list(roots)
    while stack:
        for successor in successors.get(stack.pop(), []):
            if successor not in found:
                found.add(successor)
                stack.append(successor)
    return found
