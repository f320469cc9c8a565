"""The approve-then-edit scenario of issue 13 with a real Celery worker on a real Redis and a fake Zendesk.

A run of version 1 (an internal note) parks before its side effect. Every worker then stops consuming, so the approved
step's job waits on the broker while the flow is edited to reply publicly at that index; when the worker consumes
again, it must send exactly the approved internal note, and the next run executes version 2.
"""

from collections.abc import Iterator

import pytest

from apps.credentials.services.credentials import credential_upsert
from tests.factories import task_definition
from tests.fakes.zendesk import AGENT_EMAIL, API_TOKEN, SUBDOMAIN, FakeZendesk
from tests.workers import CeleryWorker, other_workers_paused, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

WORKER_NAME = "versions-e2e"
NOTE, REPLY = "Add Zendesk Internal Note", "Add Zendesk Public Reply"


@pytest.fixture
def zendesk() -> Iterator[FakeZendesk]:
    with FakeZendesk() as fake:
        yield fake


@pytest.fixture
def zendesk_worker(transactional_db, redis_server, zendesk) -> Iterator[CeleryWorker]:
    with other_workers_paused(WORKER_NAME):
        worker = CeleryWorker(
            broker_url=redis_server.url, name=WORKER_NAME, environment={"NEENA_ZENDESK_BASE_URL": zendesk.base_url}
        )
        try:
            yield worker
        finally:
            worker.stop()


def _flow_body(task, ticket_id, body, **fields):
    return {
        "name": "Answer the ticket",
        "task_operations": [
            {
                "index": 0,
                "name": task,
                "task_definition": str(task_definition(task).id),
                "parameters": {"ticket_id": ticket_id, "body": body},
            }
        ],
        "dependencies": [],
        **fields,
    }


def _settled(api, run_id, statuses, worker):
    def check():
        body = api.get(f"/api/v1/flow_runs/?id={run_id}").json()
        return body if body["status"] in statuses else None

    return wait_for(check, timeout=60, message=f"run {run_id} in {statuses}; worker: {worker.output()[-2000:]}")


def test_a_worker_executes_the_approved_step_although_the_flow_was_edited_meanwhile(
    api, owner, zendesk, zendesk_worker
):
    credential_upsert(
        user=owner,
        integration_short_name="zendesk",
        api_key=API_TOKEN,
        config={"email": AGENT_EMAIL, "subdomain": SUBDOMAIN},
    )
    ticket = zendesk.add_ticket(subject="Charged twice", description="Charged twice in March.")
    flow = api.post("/api/v1/flows/", _flow_body(NOTE, ticket["id"], "Refund the second charge."), format="json")
    request = api.post("/api/v1/flow_requests/", {"request_instructions": "Answer the ticket."}, format="json")
    assert (flow.status_code, request.status_code) == (200, 200), (flow.json(), request.json())
    flow, request = flow.json(), request.json()
    execute = f"/api/v1/flows/execute?flow_id={flow['id']}&flow_request_id={request['id']}"

    run = api.post(execute).json()
    parked = _settled(api, run["id"], ("awaiting_approval", "failed"), zendesk_worker)
    assert (parked["status"], parked["flow_version"]) == ("awaiting_approval", 1), parked["status_reason"]

    with other_workers_paused("no-worker-at-all"):  # every worker, this test's own included, stops consuming
        approved = api.put(
            f"/api/v1/flow_runs/approve?flow_run_id={run['id']}",
            {"parameters": {"body": "Internal: refund approved."}},
            format="json",
        )
        edited = api.put(
            "/api/v1/flows/", _flow_body(REPLY, ticket["id"], "Dear customer...", id=flow["id"]), format="json"
        )
        assert approved.status_code == 200, approved.json()
        assert (edited.status_code, edited.json()["version"]) == (200, 2), edited.json()

    done = _settled(api, run["id"], ("completed", "failed"), zendesk_worker)
    assert (done["status"], done["flow_version"]) == ("completed", 1), done["status_reason"]
    added = [(comment["public"], comment["body"]) for comment in zendesk.comments[ticket["id"]][1:]]
    assert added == [(False, "Internal: refund approved.")]

    following = api.post(execute).json()
    following = _settled(api, following["id"], ("awaiting_approval", "failed"), zendesk_worker)
    assert (following["status"], following["flow_version"]) == ("awaiting_approval", 2)
    assert len(zendesk.comments[ticket["id"]]) == 2  # the public reply waits for its own approval
