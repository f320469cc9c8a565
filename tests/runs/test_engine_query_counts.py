"""No N+1 in the engine: executing a step costs the same number of queries whatever the length of the flow.

Steps run in this process, one ``task_run_execute`` call each, in real transactions (not the test's savepoints),
with the broker left out (``send_steps`` does nothing): each call makes exactly the queries a worker's job makes for
one step. The number is a baseline, like those of ``tests/test_query_counts.py``: a change that adds a query per step
updates it on purpose; one that adds a query per step *of the flow* fails whatever the baseline. (On SQLite the count
includes the ``BEGIN IMMEDIATE`` and ``COMMIT`` of the run lock; PostgreSQL reaches the same number.)
"""

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import Organization, User
from apps.runs.models import FlowRun
from apps.runs.services.execution import flow_execute, task_run_execute
from tests.runs.flows import make_flow, make_request, set_policy, step

pytestmark = pytest.mark.django_db(transaction=True)


def _queries_per_step(owner: User, length: int) -> list[int]:
    """Runs a chain of ``length`` Format Text steps step by step; the number of queries of each step, in order."""
    flow = make_flow(
        owner,
        [step(index, "Format Text", template=f"line {index}") for index in range(length)],
        [(index, index + 1) for index in range(length - 1)],
    )
    flow_run = flow_execute(user=owner, flow=flow, flow_request=make_request(owner))
    next_step = flow_run.task_runs.get(task_operation_index=0).id
    counts = []
    for _ in range(length):
        with CaptureQueriesContext(connection) as queries:
            outcome = task_run_execute(task_run_id=next_step)
        counts.append(len(queries))
        if outcome.ready:
            (ready,) = outcome.ready
            next_step = ready.task_run_id
    flow_run.refresh_from_db()
    assert flow_run.status == FlowRun.Status.COMPLETED, flow_run.status_reason
    return counts


@pytest.fixture
def run_chain(owner: User, organization: Organization, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], list[int]]:
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    monkeypatch.setattr("apps.runs.services.execution.send_steps", lambda steps, **options: None)
    return lambda length: _queries_per_step(owner, length)


# Claim, load, prepare (dependencies, upstream results, steps), record, then under the run's lock: end the step and
# ready its successor. The last step saves the finished run instead of readying a successor, so it costs the same.
QUERIES_PER_STEP = 16


def test_queries_per_step_do_not_grow_with_the_flow(run_chain: Callable[[int], list[int]]) -> None:
    short = run_chain(3)
    long = run_chain(10)

    assert set(short) == set(long) == {QUERIES_PER_STEP}, (short, long)
