"""Run answers stay bounded however many steps a run has: lists embed the first NEENA_LIST_TASK_RUNS_LIMIT task runs
of each run and leave out task-run fields longer than NEENA_LIST_TASK_RUN_FIELD_CHARS; reading one run shows up to
NEENA_DETAIL_TASK_RUNS_LIMIT task runs, whole, paged with task_runs_skip and task_runs_limit."""

import pytest
from django.test import override_settings

from apps.runs.models import TaskRun
from apps.runs.rendering import rendered_runs_forget
from tests.factories import FlowFactory, FlowRunFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache():
    rendered_runs_forget()
    yield
    rendered_runs_forget()


def run_with_steps(organization, steps, **task_run_fields):
    """A finished run of ``steps`` task runs (bulk-created: building the flow's operations one by one is slow)."""
    run = FlowRunFactory(organization=organization, flow=FlowFactory(organization=organization))
    TaskRun.objects.bulk_create(
        TaskRun(
            flow_run=run,
            task_operation_index=index,
            status=TaskRun.Status.COMPLETED,
            result={"text": f"step {index}"},
            **task_run_fields,
        )
        for index in range(steps)
    )
    return run


def _indices(run_body):
    return [task_run["task_operation_index"] for task_run in run_body["task_runs"]]


def test_lists_embed_the_first_hundred_task_runs_and_say_how_many_there_are(api, organization):
    run = run_with_steps(organization, 250)

    for url in ("/api/v1/flow_runs/all", f"/api/v1/flow_runs/all_for_flow_id?flow_id={run.flow_id}"):
        (listed,) = api.get(url).json()
        assert _indices(listed) == list(range(100)), url
        assert (listed["task_runs_total"], listed["task_runs_truncated"]) == (250, True)
    # The second time the run comes from the cache of finished runs: the same answer.
    (again,) = api.get("/api/v1/flow_runs/all").json()
    assert _indices(again) == list(range(100)) and again["task_runs_total"] == 250


def test_a_run_within_the_cap_is_listed_whole(api, organization):
    run_with_steps(organization, 3)

    (listed,) = api.get("/api/v1/flow_runs/all").json()

    assert _indices(listed) == [0, 1, 2]
    assert (listed["task_runs_total"], listed["task_runs_truncated"]) == (3, False)
    assert listed["task_runs"][2]["result"] == {"text": "step 2"}
    assert listed["task_runs"][2]["omitted_fields"] == []


@override_settings(NEENA_LIST_TASK_RUNS_LIMIT=5)
def test_the_list_cap_is_a_setting(api, organization):
    run_with_steps(organization, 8)

    (listed,) = api.get("/api/v1/flow_runs/all").json()

    assert _indices(listed) == [0, 1, 2, 3, 4]
    assert (listed["task_runs_total"], listed["task_runs_truncated"]) == (8, True)


def test_reading_the_run_shows_every_task_run(api, organization):
    run = run_with_steps(organization, 250)

    for url in (f"/api/v1/flow_runs/?id={run.id}", f"/api/v1/flow_runs/with_flow_result?id={run.id}"):
        body = api.get(url).json()
        assert _indices(body) == list(range(250)), url
        assert (body["task_runs_total"], body["task_runs_truncated"]) == (250, False)


def test_the_run_pages_its_task_runs(api, organization):
    run = run_with_steps(organization, 250)

    body = api.get(f"/api/v1/flow_runs/?id={run.id}&task_runs_skip=200&task_runs_limit=30").json()
    assert _indices(body) == list(range(200, 230))
    assert (body["task_runs_total"], body["task_runs_truncated"]) == (250, True)

    tail = api.get(f"/api/v1/flow_runs/with_flow_result?id={run.id}&task_runs_skip=240").json()
    assert _indices(tail) == list(range(240, 250))
    beyond = api.get(f"/api/v1/flow_runs/?id={run.id}&task_runs_skip=1000").json()
    assert beyond["task_runs"] == [] and beyond["task_runs_total"] == 250


@override_settings(NEENA_DETAIL_TASK_RUNS_LIMIT=40)
def test_reading_a_run_is_capped_too(api, organization):
    run = run_with_steps(organization, 50)

    body = api.get(f"/api/v1/flow_runs/?id={run.id}").json()
    assert _indices(body) == list(range(40))
    assert (body["task_runs_total"], body["task_runs_truncated"]) == (50, True)

    response = api.get(f"/api/v1/flow_runs/?id={run.id}&task_runs_limit=41")
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "loc": ["query", "task_runs_limit"],
            "msg": "Ensure this value is less than or equal to 40.",
            "type": "max_value",
        }
    ]


@pytest.mark.parametrize(
    ("query", "loc", "type"),
    [
        ("task_runs_limit=0", "task_runs_limit", "min_value"),
        ("task_runs_limit=1001", "task_runs_limit", "max_value"),
        ("task_runs_limit=many", "task_runs_limit", "invalid"),
        ("task_runs_skip=-1", "task_runs_skip", "min_value"),
        ("task_runs_skip=", "task_runs_skip", "invalid"),
    ],
)
def test_bad_task_run_paging_is_422(api, organization, query, loc, type):
    run = run_with_steps(organization, 2)

    response = api.get(f"/api/v1/flow_runs/?id={run.id}&{query}")

    assert response.status_code == 422
    assert [(item["loc"], item["type"]) for item in response.json()["detail"]] == [(["query", loc], type)]


def test_lists_leave_out_large_fields_that_reading_the_run_shows(api, organization):
    large = {"text": "x" * 9000}
    run = run_with_steps(organization, 2)
    TaskRun.objects.filter(flow_run=run, task_operation_index=1).update(
        result=large, task_prep_prompt={"messages": [{"role": "user", "content": "y" * 9000}]}
    )

    (listed,) = api.get("/api/v1/flow_runs/all").json()
    small, big = listed["task_runs"]
    assert (small["result"], small["omitted_fields"]) == ({"text": "step 0"}, [])
    assert (big["result"], big["task_prep_prompt"]) == (None, None)
    assert big["omitted_fields"] == ["task_prep_prompt", "result"]
    assert big["task_prep_answer"] == {}

    whole = api.get(f"/api/v1/flow_runs/?id={run.id}").json()["task_runs"][1]
    assert whole["result"] == large
    assert whole["task_prep_prompt"]["messages"][0]["content"] == "y" * 9000
    assert whole["omitted_fields"] == []


@override_settings(NEENA_LIST_TASK_RUN_FIELD_CHARS=100)
def test_the_field_cap_is_a_setting(api, organization):
    run = run_with_steps(organization, 1)
    TaskRun.objects.filter(flow_run=run).update(result={"text": "z" * 120})

    (task_run,) = api.get("/api/v1/flow_runs/all").json()[0]["task_runs"]

    assert (task_run["result"], task_run["omitted_fields"]) == (None, ["result"])


def test_a_null_result_is_not_an_omitted_one(api, organization):
    run = run_with_steps(organization, 1)
    TaskRun.objects.filter(flow_run=run).update(result=None)

    (task_run,) = api.get("/api/v1/flow_runs/all").json()[0]["task_runs"]

    assert (task_run["result"], task_run["omitted_fields"]) == (None, [])
