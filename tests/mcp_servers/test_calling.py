"""When a failed tool call is retried: only when it surely never reached the server, or the tool is read-only or
idempotent, so a side effect is never done twice."""

import uuid
from typing import Any

import pytest

from apps.integrations.execution import TaskContext, TaskError, TransientTaskError, task_implementation
from apps.integrations.models import TaskDefinition
from apps.mcp_servers.models import McpServer
from tests.mcp_servers.conftest import GIT_SERVER, TIME_SERVER

pytestmark = pytest.mark.django_db


def _context() -> TaskContext:
    return TaskContext(
        organization_id=uuid.uuid4(),
        flow_run_id=uuid.uuid4(),
        flow_request_id=uuid.uuid4(),
        task_run_id=uuid.uuid4(),
        idempotency_key="key",
        integration_entity=None,
        time_limit_seconds=10,
    )


def _definition(api: Any, tool: str) -> TaskDefinition:
    response = api.post(
        "/api/v1/mcp_servers/", {"name": "time", "transport": "stdio", "command": TIME_SERVER}, format="json"
    )
    assert response.status_code == 200, response.content
    return TaskDefinition.objects.get(python_method_name=tool)


def test_a_server_that_cannot_start_is_a_transient_failure(api):
    definition = _definition(api, "get_current_time")
    # The server now starts a program that exits at once: nothing was sent, so the engine may retry.
    McpServer.objects.update(command=GIT_SERVER, args=["--no-such-option"])

    with pytest.raises(TransientTaskError, match="MCP server failed"):
        task_implementation(definition)(_context(), timezone="Asia/Tokyo")


def test_an_unknown_tool_outcome_is_retried_only_for_repeatable_tools(api, monkeypatch):
    from apps.mcp_servers import calling
    from apps.mcp_servers.client import McpUnavailableError

    definition = _definition(api, "get_current_time")

    def lost(*args: Any, **kwargs: Any) -> Any:
        raise McpUnavailableError("The MCP server did not answer within 10 s.", sent=True)

    monkeypatch.setattr(calling, "tool_call", lost)
    with pytest.raises(TransientTaskError):  # read-only: repeating it does no harm
        task_implementation(definition)(_context(), timezone="Asia/Tokyo")

    McpServer.objects.update(tool_hints={"get_current_time": {"read_only": False, "idempotent": False}})
    with pytest.raises(TaskError, match="not repeated") as raised:
        task_implementation(definition)(_context(), timezone="Asia/Tokyo")
    assert not isinstance(raised.value, TransientTaskError)
