"""Building flows from core tasks for the engine tests, through the same service the API uses."""

from typing import Any

from apps.accounts.models import Organization, User
from apps.flows.models import Flow, FlowRequest
from apps.flows.services import DependencyDraft, TaskOperationDraft, flow_create, flow_request_create
from apps.runs.models import FlowRun, TaskRun
from apps.runs.services.run_creation import flow_execute
from apps.runs.services.step_execution import task_run_execute
from tests.factories import task_definition


def step(index: int, task: str, instruction: str = "", **parameters: Any) -> TaskOperationDraft:
    return TaskOperationDraft(
        index=index,
        name=f"{task} {index}",
        task_definition=task_definition(task).id,
        instruction=instruction,
        parameters=parameters,
    )


def make_flow(user: User, steps: list[TaskOperationDraft], edges: list[tuple[int, int]]) -> Flow:
    return flow_create(
        user=user,
        name="Engine test",
        task_operations=steps,
        dependencies=[DependencyDraft(source, target) for source, target in edges],
    )


def make_request(user: User, instructions: str = "Handle it.", metadata: Any = None) -> FlowRequest:
    return flow_request_create(user=user, request_instructions=instructions, request_metadata=metadata)


def set_policy(organization: Organization, policy: str, **fields: Any) -> None:
    Organization.objects.filter(id=organization.id).update(approval_policy=policy, **fields)


def diamond(user: User, width: int) -> Flow:
    """Step 0 fans out to ``width`` notification steps, which all join into one Format Text step."""
    join = width + 1
    branches = [
        step(index, "Send Notification", recipient=f"person{index}@example.com", message=f"branch {index}")
        for index in range(1, width + 1)
    ]
    joined = " + ".join(f"{{{{ steps.{index}.result.notification_id }}}}" for index in range(1, width + 1))
    return make_flow(
        user,
        [step(0, "Format Text", template="start"), *branches, step(join, "Format Text", template=joined)],
        [(0, index) for index in range(1, width + 1)] + [(index, join) for index in range(1, width + 1)],
    )


def run_steps(flow_run: FlowRun) -> FlowRun:
    """Plays the worker in-process: runs the queued steps, then those they ready, until none is left."""
    queue = list(
        flow_run.task_runs.filter(status=TaskRun.Status.PENDING, enqueued_at__isnull=False).values_list("id", flat=True)
    )
    while queue:
        queue += [ready.task_run_id for ready in task_run_execute(task_run_id=queue.pop(0)).ready]
    flow_run.refresh_from_db()
    return flow_run


def waiting_run(owner: User, recipient: str = "ann@example.com", triggered_by: str = "") -> FlowRun:
    """A run parked before its Send Notification step, its Format Text step done."""
    flow = make_flow(
        owner,
        [step(0, "Format Text", template="Refund approved"), step(1, "Send Notification", f"Tell {recipient}")],
        [(0, 1)],
    )
    flow_run = flow_execute(user=owner, flow=flow, flow_request=make_request(owner), triggered_by=triggered_by)
    run_steps(flow_run)
    assert flow_run.status == FlowRun.Status.AWAITING_APPROVAL
    assert flow_run.approval_status == FlowRun.ApprovalStatus.PENDING
    return flow_run
