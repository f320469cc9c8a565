"""Event content cannot switch an operation off.

Failures caused by one event's content (a missing or mistyped field, values its flow cannot be planned with) fail that
event's trigger run only; failures of the operation itself (a creator who left, a template the planner cannot cover)
count, and NEENA_WEBHOOK_MAX_CONSECUTIVE_FAILURES of them in a row still set it to failed.
"""

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import Membership
from apps.core.exceptions import InputValidationError
from apps.webhooks.models import TriggerRun, WebhookTriggerOperation
from apps.webhooks.services import processing, receiving
from tests.webhooks.signing import ZENDESK_TICKET_CREATED, create_operation, deliver, zendesk_ticket_created

pytestmark = pytest.mark.django_db

DELIVERIES = 6  # one more than NEENA_WEBHOOK_MAX_CONSECUTIVE_FAILURES (5)


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr(receiving, "send_trigger_run", lambda trigger_run_id: None)


def _deliver_and_process(operation, payloads):
    """Each payload delivered (signed) and processed, as the worker would; the trigger runs, oldest first."""
    for payload in payloads:
        response = deliver(APIClient(), operation, payload, trigger_name=ZENDESK_TICKET_CREATED)
        assert response.status_code == 202, response.content
        processing.trigger_run_process(trigger_run_id=response.json()["trigger_run_id"])
    return list(TriggerRun.objects.filter(operation_id=operation["id"]).order_by("created_date"))


def _operation(operation):
    return WebhookTriggerOperation.objects.get(id=operation["id"])


@pytest.mark.parametrize(
    ("payloads", "reason"),
    [
        (
            [{**zendesk_ticket_created(), "ticket": {"id": n}} for n in range(DELIVERIES)],
            "The required event field 'subject' ($.ticket.subject) is not in the payload.",
        ),
        (
            [zendesk_ticket_created(ticket_id=f"not a number {n}") for n in range(DELIVERIES)],
            "The event field 'ticket_id' ($.ticket.id)",
        ),
    ],
    ids=["missing field", "mistyped field"],
)
def test_events_whose_fields_do_not_fit_leave_the_operation_active(api, payloads, reason):
    operation = create_operation(api, ZENDESK_TICKET_CREATED)

    runs = _deliver_and_process(operation, payloads)

    assert len(runs) == DELIVERIES
    assert all(run.status == TriggerRun.Status.FAILED and run.reason.startswith(reason) for run in runs), [
        run.reason for run in runs
    ]
    stored = _operation(operation)
    assert (stored.status, stored.consecutive_failures, stored.last_failure_reason) == ("active", 0, "")


def test_events_whose_values_cannot_be_planned_leave_the_operation_active(api, monkeypatch):
    """A plain value (an id) reaches the planner as it is; one it refuses is that event's fault: the same template
    plans once the value stands for its field."""
    operation = create_operation(
        api, ZENDESK_TICKET_CREATED, template_body="Reply to ticket <{ticket_id}> with a summary of <{description}>."
    )
    real_plan = processing.flow_plan

    def planner_refusing_cursed_ids(**kwargs):
        if "666" in kwargs["instructions"]:
            raise InputValidationError.single(
                ["flow_request", "request_instructions"], "No task fits ticket 666.", "planning"
            )
        return real_plan(**kwargs)

    monkeypatch.setattr(processing, "flow_plan", planner_refusing_cursed_ids)

    runs = _deliver_and_process(
        operation, [zendesk_ticket_created(ticket_id=666, subject=f"Try {n}") for n in range(DELIVERIES)]
    )

    assert [(run.status, run.reason) for run in runs] == [
        (TriggerRun.Status.FAILED, "The flow could not be planned: No task fits ticket 666.")
    ] * DELIVERIES
    assert all(run.flow_request is not None for run in runs)  # kept, to read and to generate again by hand
    assert (_operation(operation).status, _operation(operation).consecutive_failures) == ("active", 0)
    # The operation still works for the next ordinary event.
    [*_, ordinary] = _deliver_and_process(operation, [zendesk_ticket_created(ticket_id=7)])
    assert ordinary.status == TriggerRun.Status.COMPLETED, ordinary.reason


def test_failures_of_the_operation_itself_still_switch_it_off(api, owner, organization):
    operation = create_operation(api, ZENDESK_TICKET_CREATED)
    Membership.objects.filter(user=owner, organization=organization).delete()

    runs = _deliver_and_process(operation, [zendesk_ticket_created(ticket_id=n) for n in range(DELIVERIES - 1)])

    assert all(run.status == TriggerRun.Status.FAILED for run in runs)
    stored = _operation(operation)
    assert (stored.status, stored.consecutive_failures) == ("failed", DELIVERIES - 1)
    assert "no longer an active member" in stored.last_failure_reason
    refused = deliver(APIClient(), operation, zendesk_ticket_created(ticket_id=99), trigger_name=ZENDESK_TICKET_CREATED)
    assert refused.status_code == 404


def test_a_template_the_planner_cannot_cover_still_switches_it_off(api):
    """The template fails with any event's values: it is the operation's failure, even with a plain value in it."""
    operation = create_operation(
        api, ZENDESK_TICKET_CREATED, template_body="Launch the weather balloon over ticket <{ticket_id}>."
    )

    runs = _deliver_and_process(operation, [zendesk_ticket_created(ticket_id=n) for n in range(DELIVERIES - 1)])

    assert all(run.reason.startswith("The flow could not be planned:") for run in runs)
    stored = _operation(operation)
    assert (stored.status, stored.consecutive_failures) == ("failed", DELIVERIES - 1)
