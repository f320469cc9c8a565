"""The migration to flow versions: existing flows become version 1 with their steps and edges, existing runs are
pinned to it, and nothing is lost (``flows`` 0003-0005, ``runs`` 0003-0005).

The database is taken back to the migrations before versions, filled through the models of that time, and migrated
forward again, as a deployment upgrading would.
"""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.flows.models import Dependency, Flow, TaskOperation
from apps.flows.services import TaskOperationDraft, flow_update
from apps.runs.models import ApprovalDecision, FlowRun, TaskRun
from tests.factories import UserFactory, personal_organization, task_definition

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE_VERSIONS = [("flows", "0002_planner"), ("runs", "0002_execution_state")]


def _migrate(targets=None):
    """Migrates to ``targets`` (the latest migrations when None) and returns the models of that state."""
    executor = MigrationExecutor(connection)
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


@pytest.fixture
def old_data():
    """A flow of three steps and two edges, edited the old way, with a run whose step 2 an edit had removed."""
    user = UserFactory(email="Author@Example.com")
    organization = personal_organization(user)
    old = _migrate(BEFORE_VERSIONS)
    flow_model, operation_model = old.get_model("flows", "Flow"), old.get_model("flows", "TaskOperation")
    flow = flow_model.objects.create(
        organization_id=organization.id,
        name="Old flow",
        created_by_email="someone@example.com",
        modified_by_email="author@example.com",
    )
    operations = [
        operation_model.objects.create(
            flow=flow,
            task_definition_id=task_definition("Format Text").id,
            name=f"Step {index}",
            index=index,
            sorted_index=index,
            parameters={"template": f"step {index}"},
        )
        for index in range(3)
    ]
    edges = [
        old.get_model("flows", "Dependency").objects.create(
            flow=flow, source_task_operation=index, target_task_operation=index + 1, instruction=f"edge {index}"
        )
        for index in range(2)
    ]
    flow_request = old.get_model("flows", "FlowRequest").objects.create(
        organization_id=organization.id, request_instructions="Do it.", flow=flow
    )
    run = old.get_model("runs", "FlowRun").objects.create(
        organization_id=organization.id, flow=flow, flow_request=flow_request, status="completed"
    )
    task_runs = [
        old.get_model("runs", "TaskRun").objects.create(
            flow_run=run,
            task_operation=operations[index] if index < 2 else None,
            task_operation_index=index,
            status="completed",
            result={"text": f"step {index}"},
        )
        for index in range(3)
    ]
    decision = old.get_model("runs", "ApprovalDecision").objects.create(
        flow_run=run, task_run=task_runs[1], decision="approved", decided_by="author@example.com"
    )
    flow.refresh_from_db()
    return {
        "user": user,
        "flow": flow,
        "operations": [operation.id for operation in operations],
        "edges": [edge.id for edge in edges],
        "run": run.id,
        "task_runs": {task_run.id: task_run.task_operation_id for task_run in task_runs},
        "decision": decision.id,
    }


def test_existing_flows_and_runs_become_version_1_with_nothing_lost(old_data):
    _migrate()

    flow = Flow.objects.select_related("latest_version").get(id=old_data["flow"].id)
    version = flow.latest_version
    assert (version.number, version.summary) == (1, "The flow as it was when versions began to be kept.")
    assert version.created_by == old_data["user"]
    assert version.created_by_email == "author@example.com"
    assert version.created_date == old_data["flow"].modified_date
    assert list(flow.versions.all()) == [version]
    assert (
        list(TaskOperation.objects.filter(flow_version=version).values_list("id", flat=True)) == old_data["operations"]
    )
    assert [op.parameters for op in flow.task_operations.all()] == [{"template": f"step {i}"} for i in range(3)]
    assert list(
        Dependency.objects.filter(flow_version=version)
        .order_by("source_task_operation")
        .values_list("id", "instruction")
    ) == [(old_data["edges"][0], "edge 0"), (old_data["edges"][1], "edge 1")]
    run = FlowRun.objects.get(id=old_data["run"])
    assert (run.flow_id, run.flow_version_id) == (flow.id, version.id)
    assert dict(TaskRun.objects.filter(flow_run=run).values_list("id", "task_operation_id")) == old_data["task_runs"]
    assert TaskRun.objects.filter(flow_run=run, approved_step={}).count() == 3
    assert ApprovalDecision.objects.filter(id=old_data["decision"], flow_run=run).exists()


def test_migrating_back_keeps_each_flows_latest_version(old_data):
    _migrate()
    flow = Flow.objects.get(id=old_data["flow"].id)
    draft = TaskOperationDraft(index=0, name="Only", task_definition=task_definition("Format Text").id)
    flow_update(user=old_data["user"], flow=flow, name="Old flow", task_operations=[draft])

    old = _migrate(BEFORE_VERSIONS)

    kept = old.get_model("flows", "TaskOperation").objects.filter(flow_id=flow.id)
    assert list(kept.values_list("name", flat=True)) == ["Only"]
    assert not old.get_model("flows", "Dependency").objects.filter(flow_id=flow.id).exists()
    # The task runs of the steps that went away lose their link, as an edit did before versions.
    assert set(
        old.get_model("runs", "TaskRun")
        .objects.filter(flow_run_id=old_data["run"])
        .values_list("task_operation_id", flat=True)
    ) == {None}
    _migrate()
    assert Flow.objects.get(id=flow.id).latest_version.number == 1
