"""No N+1 in the engine: executing a step costs the same number of queries whatever the length of the flow.

Steps run in this process, in real transactions (not the test's savepoints), with the broker left out
(``send_steps`` does nothing), in the two ways a worker runs them: each step claimed by the job it was sent to
(``task_run_execute``, sharing one ``memories`` cache as a job does), and a whole chain run in place by one job
(``task_runs_execute``), each step claimed by the write that readied it. The numbers are baselines, like those of
``tests/test_query_counts.py``: a change that adds a query per step updates them on purpose; one that adds a query
per step *of the flow* fails whatever the baselines. PostgreSQL reaches the same numbers as SQLite.
"""

from collections.abc import Callable
from uuid import UUID

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import Organization, User
from apps.runs.models import FlowRun
from apps.runs.services.memory import RunMemory
from apps.runs.services.run_creation import flow_execute
from apps.runs.services.step_execution import task_run_execute, task_runs_execute
from tests.runs.flows import make_flow, make_request, set_policy, step

pytestmark = pytest.mark.django_db(transaction=True)


def _start_chain(owner: User, length: int) -> tuple[FlowRun, UUID]:
    """A run of a chain of ``length`` Format Text steps, and its first step's id."""
    flow = make_flow(
        owner,
        [step(index, "Format Text", template=f"line {index}") for index in range(length)],
        [(index, index + 1) for index in range(length - 1)],
    )
    flow_run = flow_execute(user=owner, flow=flow, flow_request=make_request(owner))
    return flow_run, flow_run.task_runs.get(task_operation_index=0).id


def _queries_per_step(owner: User, length: int) -> list[int]:
    """Runs a chain step by step, each step as if sent to the job that runs it; the number of queries of each step."""
    flow_run, next_step = _start_chain(owner, length)
    counts = []
    memories: dict[UUID, RunMemory] = {}
    for _ in range(length):
        with CaptureQueriesContext(connection) as queries:
            outcome = task_run_execute(task_run_id=next_step, memories=memories)
        counts.append(len(queries))
        if outcome.ready:
            (ready,) = outcome.ready
            next_step = ready.task_run_id
    flow_run.refresh_from_db()
    assert flow_run.status == FlowRun.Status.COMPLETED, flow_run.status_reason
    return counts


def _queries_of_one_job(owner: User, length: int) -> int:
    """Runs a chain as one job does, each step running the next in place; the number of queries of the whole job."""
    flow_run, first_step = _start_chain(owner, length)
    with CaptureQueriesContext(connection) as queries:
        task_runs_execute(task_run_ids=[first_step], time_limit_seconds=600)
    flow_run.refresh_from_db()
    assert flow_run.status == FlowRun.Status.COMPLETED, flow_run.status_reason
    return len(queries)


@pytest.fixture
def run_chain(owner: User, organization: Organization, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], list[int]]:
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps, **options: None)
    monkeypatch.setattr("apps.runs.services.step_execution.send_steps", lambda steps, **options: None)
    return lambda length: _queries_per_step(owner, length)


# Read and claim; end the step (with its preparation: a core step is recorded once); ready its successor. No lock, no
# read of the other steps' states: a chain's successor has no other predecessor. The job remembers the rest: the
# earlier results, and the steps ahead, read once. The first step also reads what the job then keeps (the request, the
# task definition, the edges, the steps ahead, how steps are queued) and starts the run; the last one has no
# successor: instead it asks whether any step is unfinished (none), then, in one transaction (two statements more),
# reads the first failure (none) and ends the run. The claim and the end each write the step's attempt in their own
# transaction (BEGIN, the step's UPDATE, the attempt's INSERT or UPDATE, COMMIT): three statements more each.
QUERIES_PER_STEP = 4 + 2 * 3
QUERIES_FIRST_STEP = QUERIES_PER_STEP + 6
QUERIES_LAST_STEP = QUERIES_PER_STEP - 1 + 3 + 2


def test_queries_per_step_do_not_grow_with_the_flow(run_chain: Callable[[int], list[int]]) -> None:
    short = run_chain(3)
    long = run_chain(10)

    for counts in (short, long):
        assert counts[0] == QUERIES_FIRST_STEP, counts
        assert set(counts[1:-1]) == {QUERIES_PER_STEP}, counts
        assert counts[-1] == QUERIES_LAST_STEP, counts


# A step run in place was claimed by the write that readied it: it ends, and claims its successor (each with its
# attempt, in a transaction of its own: three statements more each).
QUERIES_PER_STEP_IN_PLACE = 2 + 2 * 3
# The last step, claimed in place too, skips the claim (read and write) a step sent to its own job makes.
QUERIES_OF_A_THREE_STEP_JOB = QUERIES_FIRST_STEP + QUERIES_PER_STEP_IN_PLACE + (QUERIES_LAST_STEP - 2)


def test_steps_run_in_place_cost_a_fixed_number_of_queries(
    owner: User, organization: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps, **options: None)
    monkeypatch.setattr("apps.runs.services.step_execution.send_steps", lambda steps, **options: None)
    short = _queries_of_one_job(owner, 3)
    long = _queries_of_one_job(owner, 10)

    assert long - short == (10 - 3) * QUERIES_PER_STEP_IN_PLACE
    assert short == QUERIES_OF_A_THREE_STEP_JOB
