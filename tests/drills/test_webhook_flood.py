"""Drill: a flood of signed events to the generic webhook endpoint, with integrations' retries mixed in.

A few client threads post distinct events and, meanwhile, send some of them again (an integration retrying a delivery
it thinks was lost) to a real HTTP server, while a real worker plans and runs a flow per event. Every answer is 202
(new) or 200 (duplicate), never 5xx; every distinct event was accepted exactly once and became exactly one trigger
run, one flow run and one notification; every run ends.
"""

import random
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from apps.accounts.models import Organization
from apps.integrations.models import Notification
from apps.runs.models import FlowRun
from apps.webhooks.models import TriggerRun
from tests.runs.flows import set_policy
from tests.webhooks.signing import GENERIC_EVENT, body_of, create_operation, generic_event, standard_headers
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live_server]

EVENTS = 150
RETRIES = 50
CLIENT_THREADS = 4
TEMPLATE = "Summarize <{text}> and notify ops@example.com with the summary."


def test_webhook_flood_every_event_runs_once(api, organization, live_server, celery_worker):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    operation = create_operation(api, GENERIC_EVENT, name="Orders", template_body=TEMPLATE)
    secret = operation["signing_secret"]
    events = {
        f"delivery-{number}": body_of(
            generic_event(entity_id=f"order-{number}", text=f"order {number} placed by Ann for delivery on Monday")
        )
        for number in range(EVENTS)
    }
    chooser = random.Random(7)  # noqa: S311 - a reproducible order, not cryptography
    sends = list(events) + chooser.sample(list(events), RETRIES)
    chooser.shuffle(sends)

    def post(http: httpx.Client, delivery: str) -> tuple[str, int, dict]:
        response = http.post(
            f"/api/v1/webhooks/{operation['id']}/",
            content=events[delivery],
            headers={
                "Content-Type": "application/json",
                **standard_headers(secret, events[delivery], delivery=delivery),
            },
        )
        return delivery, response.status_code, response.json() if response.content else {}

    with (
        httpx.Client(base_url=live_server.url, timeout=60) as http,
        ThreadPoolExecutor(max_workers=CLIENT_THREADS) as pool,
    ):
        answers = list(pool.map(lambda delivery: post(http, delivery), sends))

    statuses = sorted({status for _, status, _ in answers})
    assert set(statuses) <= {200, 202}, [answer for answer in answers if answer[1] not in (200, 202)][:5]
    accepted = {delivery: body["trigger_run_id"] for delivery, status, body in answers if status == 202}
    assert sorted(accepted) == sorted(events), "every distinct event is accepted exactly once"
    for delivery, status, body in answers:
        if status == 200:
            assert body == {"trigger_run_id": accepted[delivery], "duplicate": True}

    trigger_runs = TriggerRun.objects.filter(operation_id=operation["id"])
    ended = (TriggerRun.Status.COMPLETED, TriggerRun.Status.FAILED)
    wait_for(lambda: trigger_runs.filter(status__in=ended).count() == EVENTS, timeout=120, message="the trigger runs")
    assert {str(trigger_run_id) for trigger_run_id in trigger_runs.values_list("id", flat=True)} == set(
        accepted.values()
    )
    failed = list(trigger_runs.filter(status=TriggerRun.Status.FAILED).values_list("reason", flat=True)[:3])
    assert not failed, failed

    flow_runs = FlowRun.objects.filter(id__in=trigger_runs.values("flow_run"))
    assert flow_runs.count() == EVENTS
    wait_for(lambda: flow_runs.filter(status__in=FlowRun.TERMINAL).count() == EVENTS, timeout=120, message="the runs")
    assert set(flow_runs.values_list("status", flat=True)) == {FlowRun.Status.COMPLETED}
    notifications = Notification.objects.filter(flow_run__in=flow_runs)
    assert notifications.count() == EVENTS
    assert notifications.values("flow_run").distinct().count() == EVENTS
