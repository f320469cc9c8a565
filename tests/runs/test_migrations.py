"""The migration to actor references (``runs`` 0007-0008): existing runs and decisions get the user or webhook
operation their strings name, where that can be told for sure, and keep the strings.

The database is taken back to the migration before the references (dropping them), and migrated forward again, as
a deployment upgrading would.
"""

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.runs.models import ApprovalDecision, FlowRun
from apps.runs.services.run_creation import flow_execute
from apps.webhooks.models import TriggerRun
from apps.webhooks.services import operations
from tests.factories import UserFactory, personal_organization, trigger_definition
from tests.runs.flows import make_flow, make_request, step
from tests.webhooks.signing import ZENDESK_TICKET_CREATED

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE_REFERENCES = [("runs", "0006_rerun_from_copies")]


def _migrate(targets=None):
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


def _operation(user, name):
    operation, _ = operations.trigger_operation_create(
        user=user,
        name=name,
        webhook_trigger_definition=trigger_definition(ZENDESK_TICKET_CREATED).id,
        template_body="Tell the team.",
        status="active",
    )
    return operation


@pytest.fixture
def runs(monkeypatch):
    """Runs and decisions as they were before references: only their strings say who."""
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: None)
    user = UserFactory(email="author@example.com")
    flow = make_flow(user, [step(0, "Format Text", template="x")], [])
    flow_request = make_request(user)
    linked, named, twin = _operation(user, "Linked"), _operation(user, "Named"), _operation(user, "Twin")
    _operation(user, "Twin")

    def run(triggered_by):
        flow_run = flow_execute(user=user, flow=flow, flow_request=flow_request)
        FlowRun.objects.filter(id=flow_run.id).update(triggered_by=triggered_by)
        return flow_run.id

    made = {
        "by_user": run("Author@Example.com"),
        "by_unknown": run("gone@example.com"),
        # Renamed since: found through the trigger run that started it, not by its name.
        "linked": run("webhook:Linked before a rename"),
        "named": run("webhook:Named"),
        "ambiguous": run("webhook:Twin"),
    }
    TriggerRun.objects.create(
        organization_id=linked.organization_id,
        operation=linked,
        delivery_id=str(uuid.uuid4()),
        payload={},
        flow_run_id=made["linked"],
    )
    decided = ApprovalDecision.objects.create(
        flow_run_id=made["by_user"], decision="approved", decided_by="AUTHOR@example.com"
    )
    timed_out = ApprovalDecision.objects.create(
        flow_run_id=made["by_user"], decision="rejected", decided_by="approval timeout"
    )
    _migrate(BEFORE_REFERENCES)
    return {
        **made,
        "user": user,
        "operations": {"linked": linked.id, "named": named.id, "twin": twin.id},
        "decided": decided.id,
        "timed_out": timed_out.id,
        "organization": personal_organization(user),
    }


def test_existing_runs_and_decisions_reference_their_actors(runs):
    _migrate()

    def references(key):
        run = FlowRun.objects.get(id=runs[key])
        return run.trigger_user_id, run.trigger_webhook_operation_id

    assert references("by_user") == (runs["user"].id, None)
    assert references("by_unknown") == (None, None)
    assert references("linked") == (None, runs["operations"]["linked"])
    assert references("named") == (None, runs["operations"]["named"])
    assert references("ambiguous") == (None, None)
    assert FlowRun.objects.get(id=runs["by_user"]).triggered_by == "Author@Example.com"
    decided = ApprovalDecision.objects.get(id=runs["decided"])
    assert (decided.decided_by_user_id, decided.decided_by) == (runs["user"].id, "AUTHOR@example.com")
    assert ApprovalDecision.objects.get(id=runs["timed_out"]).decided_by_user_id is None
