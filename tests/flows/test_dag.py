"""DAG validation and the deterministic topological order."""

from apps.flows.dag import ancestors, topological_order, validate_dag


def _codes(indices, edges):
    problems, _ = validate_dag(indices, edges)
    return [(problem.where, problem.code) for problem in problems]


def test_order_is_topological_and_prefers_smaller_indices():
    problems, order = validate_dag([0, 1, 2, 3], [(2, 1), (0, 3)])

    assert problems == []
    assert order == [0, 2, 1, 3]


def test_diamond():
    _, order = validate_dag([0, 1, 2, 3], [(0, 1), (0, 2), (1, 3), (2, 3)])

    assert order == [0, 1, 2, 3]


def test_indices_need_not_be_listed_in_order():
    problems, order = validate_dag([2, 0, 1], [(1, 0)])

    assert problems == []
    assert order == [1, 0, 2]


def test_duplicate_index():
    assert _codes([0, 1, 1], []) == [(("task_operations", 2, "index"), "dag.duplicate_index")]


def test_gap_in_indices():
    problems, _ = validate_dag([0, 2], [])

    assert [(problem.where, problem.code) for problem in problems] == [(("task_operations",), "dag.index_gap")]
    assert "missing 1" in problems[0].message


def test_out_of_range_edges_name_the_end():
    assert _codes([0, 1], [(0, 5), (7, 1)]) == [
        (("dependencies", 0, "target_task_operation"), "dag.index_out_of_range"),
        (("dependencies", 1, "source_task_operation"), "dag.index_out_of_range"),
    ]


def test_self_loop_and_duplicate_edge():
    assert _codes([0, 1], [(0, 1), (1, 1), (0, 1)]) == [
        (("dependencies", 1), "dag.self_loop"),
        (("dependencies", 2), "dag.duplicate_edge"),
    ]


def test_cycle_is_named():
    problems, order = validate_dag([0, 1, 2, 3], [(0, 1), (1, 2), (2, 3), (3, 1)])

    assert order == []
    assert problems[0].code == "dag.cycle"
    assert "1 -> 2 -> 3 -> 1" in problems[0].message


def test_large_chain_is_fast_enough_to_validate():
    size = 10_000
    problems, order = validate_dag(list(range(size)), [(index, index + 1) for index in range(size - 1)])

    assert problems == []
    assert order == list(range(size))


def test_topological_order_reports_leftover_on_cycle():
    order, leftover = topological_order(3, [(0, 1), (1, 0)])

    assert order == [2]
    assert leftover == [0, 1]


def test_ancestors_are_transitive():
    assert ancestors(4, [(0, 1), (1, 2), (3, 2)], 2) == {0, 1, 3}
    assert ancestors(4, [(0, 1)], 0) == set()
