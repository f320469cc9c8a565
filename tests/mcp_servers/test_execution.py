"""MCP tools planned and run like any task: by a real Celery worker against real servers (mcp-server-time,
mcp-server-git), and in process against an SDK server over streamable HTTP for the failure paths."""

from pathlib import Path
from typing import Any

import pytest

from apps.flows.services import TaskOperationDraft, flow_create
from apps.integrations.models import TaskDefinition
from apps.runs.models import FlowRun, TaskRun
from apps.runs.services.run_creation import flow_execute
from tests.fakes.mcp_http import TOKEN, FakeMcpHttpServer
from tests.mcp_servers.conftest import GIT_SERVER, TIME_SERVER, git
from tests.runs.flows import make_request, run_steps
from tests.workers import wait_for

SETTLED = ("completed", "failed", "cancelled", "awaiting_approval")


def _register(api: Any, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/api/v1/mcp_servers/", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def _settled(api: Any, flow_run_id: str) -> dict[str, Any]:
    def check() -> Any:
        body = api.get(f"/api/v1/flow_runs/?id={flow_run_id}").json()
        return body if body["status"] in SETTLED else None

    return wait_for(check, timeout=60, message=f"run {flow_run_id} to settle")  # type: ignore[no-any-return]


def _tool_flow(user: Any, server: str, tool: str, **parameters: Any) -> Any:
    definition = TaskDefinition.objects.get(integration__name=f"mcp:{server}", python_method_name=tool)
    return flow_create(
        user=user,
        name=f"{tool} flow",
        task_operations=[
            TaskOperationDraft(index=0, name=tool, task_definition=definition.id, instruction="", parameters=parameters)
        ],
        dependencies=[],
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_what_time_is_it_in_tokyo_end_to_end(api):
    _register(api, {"name": "time", "transport": "stdio", "command": TIME_SERVER})
    flow_request = api.post(
        "/api/v1/flow_requests/",
        {"request_name": "Tokyo time", "request_instructions": "What time is it in Tokyo?"},
        format="json",
    ).json()

    generated = api.post(f"/api/v1/flows/generate?flow_request_id={flow_request['id']}")
    assert generated.status_code == 200, generated.content
    flow = generated.json()
    [operation] = flow["task_operations"]
    assert operation["name"] == "Get Current Time"
    assert operation["parameters"] == {"timezone": "Asia/Tokyo"}

    executed = api.post(f"/api/v1/flows/execute?flow_id={flow['id']}&flow_request_id={flow_request['id']}")
    assert executed.status_code == 200, executed.content
    run = _settled(api, executed.json()["id"])

    assert run["status"] == "completed", [task_run["error"] for task_run in run["task_runs"]]
    result = run["task_runs"][0]["result"]
    assert result["timezone"] == "Asia/Tokyo"
    assert result["datetime"].endswith("+09:00")
    assert isinstance(result["is_dst"], bool)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_a_tool_not_declared_read_only_parks_for_approval_then_runs_once(api, owner, git_repository: Path):
    _register(api, {"name": "git", "transport": "stdio", "command": GIT_SERVER, "args": []})
    (git_repository / "notes.txt").write_text("to commit\n")
    git(git_repository, "add", "notes.txt")
    flow = _tool_flow(owner, "git", "git_commit", repo_path=str(git_repository), message="Add notes")
    status = _tool_flow(owner, "git", "git_status", repo_path=str(git_repository))
    flow_request = make_request(owner)

    read = _settled(
        api, api.post(f"/api/v1/flows/execute?flow_id={status.id}&flow_request_id={flow_request.id}").json()["id"]
    )
    assert read["status"] == "completed"
    assert "notes.txt" in read["task_runs"][0]["result"]["text"]

    run = _settled(
        api, api.post(f"/api/v1/flows/execute?flow_id={flow.id}&flow_request_id={flow_request.id}").json()["id"]
    )
    assert run["status"] == "awaiting_approval"
    assert _commits(git_repository) == ["First commit"]

    assert api.put(f"/api/v1/flow_runs/approve?flow_run_id={run['id']}").status_code == 200
    run = _settled(api, run["id"])
    assert run["status"] == "completed", [task_run["error"] for task_run in run["task_runs"]]
    assert _commits(git_repository) == ["Add notes", "First commit"]


def _commits(repository: Path) -> list[str]:
    return git(repository, "log", "--format=%s").splitlines()


# --- In process, over streamable HTTP -------------------------------------------------------------------------


@pytest.fixture
def orders(api: Any, settings: Any, mcp_http: FakeMcpHttpServer) -> FakeMcpHttpServer:
    settings.NEENA_HTTP_ALLOWLIST = ["127.0.0.1"]
    settings.NEENA_MCP_TIMEOUT_SECONDS = 2
    _register(
        api,
        {
            "name": "orders",
            "transport": "streamable_http",
            "url": mcp_http.url,
            "headers": {"Authorization": f"Bearer {TOKEN}"},
        },
    )
    return mcp_http


def _run(owner: Any, server: str, tool: str, **parameters: Any) -> FlowRun:
    flow = _tool_flow(owner, server, tool, **parameters)
    return run_steps(flow_execute(user=owner, flow=flow, flow_request=make_request(owner)))


@pytest.mark.django_db
def test_structured_content_becomes_the_result_and_headers_are_sent(owner, orders):
    flow_run = _run(owner, "orders", "lookup_order", order_id="A-1")

    assert flow_run.status == FlowRun.Status.COMPLETED
    assert flow_run.task_runs.get().result == {"order_id": "A-1", "status": "shipped", "total": 42.5}
    assert orders.calls == [("lookup_order", {"order_id": "A-1"})]
    assert all(request["authorization"] == f"Bearer {TOKEN}" for request in orders.requests)


@pytest.mark.django_db
def test_is_error_fails_the_step_with_the_tools_message(owner, orders):
    flow_run = _run(owner, "orders", "failing", order_id="A-2")

    assert flow_run.status == FlowRun.Status.FAILED
    task_run = flow_run.task_runs.get()
    assert task_run.status == TaskRun.Status.FAILED
    assert "order A-2 is archived" in task_run.error


@pytest.mark.django_db
def test_a_side_effect_tool_parks_and_an_unanswered_call_is_never_repeated(api, owner, orders):
    parked = _run(owner, "orders", "create_refund", order_id="A-3", amount=5.0)
    assert parked.status == FlowRun.Status.AWAITING_APPROVAL
    assert orders.calls == []

    # slow_write is neither read-only nor idempotent: once sent, a timeout fails the step instead of a retry.
    slow = _run(owner, "orders", "slow_write", seconds=10)
    assert slow.status == FlowRun.Status.AWAITING_APPROVAL
    assert api.put(f"/api/v1/flow_runs/approve?flow_run_id={slow.id}").status_code == 200
    slow = run_steps(slow)
    assert slow.status == FlowRun.Status.FAILED
    error = slow.task_runs.get().error
    assert "did not answer within" in error and "not repeated" in error
    assert [name for name, _ in orders.calls] == ["slow_write"]


@pytest.mark.django_db
def test_removed_servers_tools_and_commands_fail_clearly(api, owner, settings):
    server = _register(api, {"name": "time", "transport": "stdio", "command": TIME_SERVER})
    flow = _tool_flow(owner, "time", "get_current_time", timezone="Europe/Paris")

    settings.NEENA_MCP_STDIO_COMMANDS = []
    refused = run_steps(flow_execute(user=owner, flow=flow, flow_request=make_request(owner)))
    assert refused.status == FlowRun.Status.FAILED
    assert "is not a command this deployment allows" in refused.task_runs.get().error

    # A run created before the server was removed fails at its step; a new run is refused at once.
    settings.NEENA_MCP_STDIO_COMMANDS = [TIME_SERVER]
    started = flow_execute(user=owner, flow=flow, flow_request=make_request(owner))
    assert api.delete(f"/api/v1/mcp_servers/?id={server['id']}").status_code == 200
    gone = run_steps(started)
    assert gone.status == FlowRun.Status.FAILED
    assert "was removed" in gone.task_runs.get().error
    refused_run = api.post(f"/api/v1/flows/execute?flow_id={flow.id}&flow_request_id={make_request(owner).id}")
    assert refused_run.status_code == 409
    assert "no longer has the task" in refused_run.json()["detail"]
