"""Issue 6, item 6, end to end with a real Celery worker on a real Redis and a fake Zendesk on 127.0.0.1:

a signed Zendesk "ticket created" event -> a trigger run -> a flow request rendered from the operation's template ->
a planned flow (summarize, then reply) -> the run parks for approval before the reply -> approved through the API ->
the fake Zendesk receives the public reply -> the flow result for the ticket is readable at /api/v1/flow_results/.

The worker is this test's own: it is started with NEENA_ZENDESK_BASE_URL pointing at the fake (a worker is a separate
process, so overriding the setting here would not reach it). Any other worker on the broker (the suite's shared one)
stops consuming for the test's duration, so no job goes to a worker that would call the real Zendesk.
"""

from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from apps.credentials.services.credentials import credential_upsert
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.zendesk import AGENT_EMAIL, API_TOKEN, SUBDOMAIN, FakeZendesk
from tests.webhooks.signing import (
    GENERIC_EVENT,
    ZENDESK_TICKET_CREATED,
    create_operation,
    deliver,
    generic_event,
    zendesk_ticket_created,
)
from tests.workers import CeleryWorker, other_workers_paused, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

WORKER_NAME = "webhooks-e2e"
TEMPLATE = "Summarize the ticket description and reply to the ticket with the summary."
TICKET_ID = 4242
DESCRIPTION = (
    "I was charged twice for my order 1187 this morning. The second charge of 49 EUR should not be there. "
    "Please refund it."
)


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


def _settled(api, path, statuses, message):
    def check():
        body = api.get(path).json()
        return body if body["status"] in statuses else None

    return wait_for(check, timeout=60, message=message)


def test_a_signed_zendesk_ticket_becomes_an_approved_reply_and_a_flow_result(api, owner, zendesk, zendesk_worker):
    ticket = zendesk.add_ticket(
        TICKET_ID, subject="Charged twice", description=DESCRIPTION, requester_email="ann@example.com"
    )
    credential_upsert(
        user=owner,
        integration_short_name="zendesk",
        api_key=API_TOKEN,
        config={"email": AGENT_EMAIL, "subdomain": SUBDOMAIN},
    )
    operation = create_operation(api, ZENDESK_TICKET_CREATED, name="Answer new tickets", template_body=TEMPLATE)

    # 1. Zendesk delivers the signed event; Neena acknowledges at once.
    payload = zendesk_ticket_created(TICKET_ID, subject=ticket["subject"], description=DESCRIPTION)
    delivered = deliver(APIClient(), operation, payload)
    assert delivered.status_code == 202, delivered.content
    trigger_run_id = delivered.json()["trigger_run_id"]

    # 2. The worker extracts the fields, plans the flow from the template and starts the run.
    trigger_run = _settled(
        api, f"/api/v1/webhook_trigger_runs/?id={trigger_run_id}", ("completed", "failed"), "the trigger run"
    )
    assert trigger_run["status"] == "completed", (trigger_run["reason"], zendesk_worker.output()[-3000:])
    assert trigger_run["event_fields"]["ticket_id"] == TICKET_ID
    flow_request = api.get(f"/api/v1/flow_requests/?id={trigger_run['flow_request']}").json()
    assert flow_request["request_instructions"] == TEMPLATE
    flow = api.get(f"/api/v1/flows/?id={flow_request['flow']}").json()
    assert [step["name"] for step in flow["task_operations"]] and len(flow["task_operations"]) == 2

    # 3. The summary is made, and the run parks before the reply, which is a side effect.
    run = _settled(
        api,
        f"/api/v1/flow_runs/?id={trigger_run['flow_run']}",
        ("awaiting_approval", "completed", "failed", "cancelled"),
        "the run to park for approval",
    )
    assert run["status"] == "awaiting_approval", (run["status_reason"], zendesk_worker.output()[-3000:])
    assert run["triggered_by"] == "webhook:Answer new tickets"
    summarize, reply = run["task_runs"]
    assert summarize["status"] == "completed"
    summary = summarize["result"]["summary"]
    assert summary and summary in DESCRIPTION
    assert reply["status"] == "awaiting_approval"
    prepared = {parameter["name"]: parameter["value"] for parameter in reply["task_prep_answer"]["parameters"]}
    assert prepared == {"ticket_id": TICKET_ID, "body": summary}
    assert len(zendesk.comments[TICKET_ID]) == 1  # only the requester's own message: nothing sent yet
    assert not [request for request in zendesk.requests if request.method == "PUT"]

    # 4. Approved through the API, the reply reaches Zendesk.
    approved = api.put(f"/api/v1/flow_runs/approve?flow_run_id={run['id']}", {"comment": "Looks right"}, format="json")
    assert approved.status_code == 200, approved.content
    run = _settled(
        api, f"/api/v1/flow_runs/?id={run['id']}", ("completed", "failed", "cancelled"), "the run to complete"
    )
    assert run["status"] == "completed", (run["status_reason"], zendesk_worker.output()[-3000:])
    sent = zendesk.comments[TICKET_ID][-1]
    assert (sent["body"], sent["public"]) == (summary, True)
    assert zendesk.tickets[TICKET_ID]["status"] == "open"

    # 5. The flow result for the ticket is the latest for that entity.
    result = api.get(f"/api/v1/flow_results/?integration_entity_id={TICKET_ID}&integration_short_name=zendesk")
    assert result.status_code == 200, result.content
    body = result.json()
    assert body["flow_run_id"] == run["id"]
    assert body["trigger_run_id"] == trigger_run_id
    assert body["integration_entity_id"] == str(TICKET_ID)
    assert str(TICKET_ID) in body["body"]

    # The same delivery again (Zendesk retrying) starts nothing new.
    again = deliver(APIClient(), operation, payload)
    assert again.status_code == 200
    assert again.json() == {"trigger_run_id": trigger_run_id, "duplicate": True}


MODEL_WORKER_NAME = "webhooks-model"
MODEL_PLAN = {
    "name": "Echo the text",
    "task_operations": [
        {
            "index": 0,
            "task_name": "Format Text",
            "instruction": "Echo the event's text",
            "parameters": {"template": "{{ request.metadata.text }}"},
        }
    ],
    "dependencies": [],
}


def test_a_worker_asks_the_model_for_the_plan_with_no_transaction_open(api, transactional_db, redis_server):
    """A worker planning an event with the llm planner asks the model before it locks the trigger run: the network
    guard runs in the worker (tests/celery_main.py) and would fail this test otherwise."""
    model = FakeOpenAI()
    model.answer(MODEL_PLAN)
    planner = {
        "NEENA_PLANNER": "llm",
        "NEENA_LLM_BASE_URL": model.base_url,
        "NEENA_LLM_MODEL": "fake-model",
        "NEENA_LLM_MAX_RETRIES": "0",
    }
    operation = create_operation(api, GENERIC_EVENT, name="Echo orders")
    with other_workers_paused(MODEL_WORKER_NAME):
        worker = CeleryWorker(broker_url=redis_server.url, name=MODEL_WORKER_NAME, environment=planner)
        try:
            delivered = deliver(APIClient(), operation, generic_event(text="Two lamps"), trigger_name=GENERIC_EVENT)
            assert delivered.status_code == 202, delivered.content
            trigger_run = _settled(
                api,
                f"/api/v1/webhook_trigger_runs/?id={delivered.json()['trigger_run_id']}",
                ("completed", "failed"),
                "the trigger run",
            )
            run = _settled(
                api, f"/api/v1/flow_runs/?id={trigger_run['flow_run']}", ("completed", "failed"), "the flow run"
            )
        finally:
            worker.stop()
            model.stop()
    assert trigger_run["status"] == "completed", trigger_run["reason"]
    assert len(model.requests) == 1
    assert run["status"] == "completed", run["status_reason"]
    assert run["task_runs"][0]["result"]["text"] == "Two lamps"
