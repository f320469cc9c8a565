"""``/api/v1/mcp_servers/``: registering real MCP servers (mcp-server-time and mcp-server-git over stdio, an SDK
server over streamable HTTP), what their tools become, who may do what, and what is refused before anything runs."""

from typing import Any

import pytest

from apps.accounts.models import Membership
from apps.audit.models import AuditEvent
from apps.integrations.models import Integration, TaskDefinition
from apps.mcp_servers.models import McpServer
from tests.fakes.mcp_http import TOKEN
from tests.mcp_servers.conftest import GIT_SERVER, TIME_SERVER

pytestmark = pytest.mark.django_db


def _register(api: Any, **body: Any) -> Any:
    return api.post("/api/v1/mcp_servers/", {"name": "time", "transport": "stdio", **body}, format="json")


def _time(api: Any, **body: Any) -> dict[str, Any]:
    response = _register(api, command=TIME_SERVER, env={"TZ_HINT": "secret-value"}, **body)
    assert response.status_code == 200, response.content
    return response.json()


def test_registering_a_stdio_server_makes_its_tools_task_definitions_of_the_organization(api, outsider_api):
    server = _time(api)

    assert server["tool_count"] == 2
    assert server["integration_name"] == "mcp:time"
    assert server["env_names"] == ["TZ_HINT"]
    assert "env" not in server and "secret-value" not in str(server)
    assert "secret-value" not in McpServer.objects.get().secret_ciphertext
    definitions = {d["task_name"]: d for d in api.get("/api/v1/task_definitions/all?limit=500").json()}
    current = definitions["Get Current Time"]
    assert current["side_effect"] is False
    assert [(p["name"], p["data_type"], p["optional"]) for p in current["parameters"]] == [
        ("timezone", "string", False)
    ]
    assert {o["name"] for o in current["output_parameters"]} == {"timezone", "datetime", "day_of_week", "is_dst"}
    assert "mcp:time" in {i["name"] for i in api.get("/api/v1/integrations/all?limit=500").json()}
    # Another organization sees neither the integration nor its tools, nor the server.
    assert "mcp:time" not in {i["name"] for i in outsider_api.get("/api/v1/integrations/all?limit=500").json()}
    outsider_tasks = {d["task_name"] for d in outsider_api.get("/api/v1/task_definitions/all?limit=500").json()}
    assert "Get Current Time" not in outsider_tasks
    assert outsider_api.get(f"/api/v1/task_definitions/?id={current['id']}").status_code == 404
    assert outsider_api.get(f"/api/v1/mcp_servers/?id={server['id']}").status_code == 404
    assert outsider_api.post(f"/api/v1/mcp_servers/sync?id={server['id']}").status_code == 404
    assert outsider_api.delete(f"/api/v1/mcp_servers/?id={server['id']}").status_code == 404
    assert outsider_api.get("/api/v1/mcp_servers/all").json() == []
    assert AuditEvent.objects.filter(action="mcp_server.registered").count() == 1


def test_tools_not_declared_read_only_are_side_effects(api, git_repository):
    response = _register(api, name="git", command=GIT_SERVER, args=["--repository", str(git_repository)])
    assert response.status_code == 200, response.content

    definitions = TaskDefinition.objects.filter(integration__name="mcp:git")
    effects = {d.python_method_name: d.side_effect for d in definitions}
    assert effects["git_status"] is False and effects["git_log"] is False
    assert effects["git_commit"] is True and effects["git_reset"] is True and effects["git_add"] is True
    log = definitions.get(python_method_name="git_log")
    max_count = next(p for p in log.parameters if p["name"] == "max_count")
    assert (max_count["data_type"], max_count["optional"], max_count["default"]) == ("int", True, 10)


def test_the_operator_allow_list_decides_which_commands_run(api, settings):
    refused = _register(api, command="/bin/sh", args=["-c", "touch /tmp/pwned"])
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["type"] == "command_not_allowed"
    settings.NEENA_MCP_STDIO_COMMANDS = []
    nothing_allowed = _register(api, command=TIME_SERVER)
    assert nothing_allowed.status_code == 422
    assert "NEENA_MCP_STDIO_COMMANDS: none" in nothing_allowed.json()["detail"][0]["msg"]
    assert not McpServer.objects.exists() and not Integration.objects.filter(name__startswith="mcp:").exists()


@pytest.mark.parametrize("name", ["LD_PRELOAD", "PATH", "PYTHONPATH", "GIT_SSH_COMMAND", "NODE_OPTIONS", "BASH_ENV"])
def test_environment_variables_that_change_what_runs_are_refused(api, name):
    response = _register(api, command=TIME_SERVER, env={name: "/srv/evil"})
    assert response.status_code == 422
    assert response.json()["detail"][0] == {
        "loc": ["body", "env", name],
        "msg": f"'{name}' decides which program or code the server runs, and may not be set.",
        "type": "env_refused",
    }


def test_every_problem_of_a_registration_is_listed_at_once(api):
    response = _register(api, name="bad name!", command="/bin/false", url="http://x", headers={"A": "b"})
    assert response.status_code == 422
    types = {(tuple(item["loc"]), item["type"]) for item in response.json()["detail"]}
    assert types == {
        (("body", "name"), "invalid"),
        (("body", "command"), "command_not_allowed"),
        (("body", "url"), "unexpected"),
        (("body", "headers"), "unexpected"),
    }


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/mcp", "http://127.0.0.1:9/mcp", "http://[::1]/mcp", "file:///etc/passwd"]
)
def test_http_servers_go_through_the_egress_guard(api, url):
    response = _register(api, transport="streamable_http", url=url)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "url"]


def test_a_server_that_cannot_be_listed_is_not_saved(api):
    # An allowed command that is not an MCP server: it exits at once.
    response = _register(api, command=GIT_SERVER, args=["--no-such-option"])
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "unavailable"
    assert "could not be listed" in response.json()["detail"][0]["msg"]
    assert not McpServer.objects.exists()


def test_names_are_unique_per_organization(api, outsider_api):
    _time(api)
    again = _register(api, command=TIME_SERVER)
    assert again.status_code == 422 and again.json()["detail"][0]["type"] == "duplicate"
    assert _register(outsider_api, command=TIME_SERVER).status_code == 200


def test_streamable_http_server_with_secret_headers_and_resync(api, settings, mcp_http):
    settings.NEENA_HTTP_ALLOWLIST = ["127.0.0.1"]
    body = {"name": "orders", "transport": "streamable_http", "url": mcp_http.url}
    unauthorized = api.post("/api/v1/mcp_servers/", body, format="json")
    assert unauthorized.status_code == 422 and "401" in unauthorized.json()["detail"][0]["msg"]

    response = api.post(
        "/api/v1/mcp_servers/", {**body, "headers": {"Authorization": f"Bearer {TOKEN}"}}, format="json"
    )
    assert response.status_code == 200, response.content
    server = response.json()
    assert server["header_names"] == ["Authorization"] and TOKEN not in str(server)
    assert server["tool_count"] == 4
    refund = TaskDefinition.objects.get(integration__name="mcp:orders", python_method_name="create_refund")
    assert refund.side_effect is True
    assert [(p["name"], p["data_type"], p["optional"]) for p in refund.parameters] == [
        ("order_id", "string", False),
        ("amount", "float", False),
        ("reason", "string", True),
    ]

    mcp_http.remove_tool("create_refund")
    synced = api.post(f"/api/v1/mcp_servers/sync?id={server['id']}")
    assert synced.status_code == 200, synced.content
    assert synced.json()["tool_count"] == 3
    refund.refresh_from_db()
    assert refund.deleted_at is not None
    names = {d["task_name"] for d in api.get("/api/v1/task_definitions/all?limit=500").json()}
    assert "Create Refund" not in names and "Lookup Order" in names

    mcp_http.stop()
    down = api.post(f"/api/v1/mcp_servers/sync?id={server['id']}")
    assert down.status_code == 502 and down.json()["code"] == "mcp_server_unavailable"
    read = api.get(f"/api/v1/mcp_servers/?id={server['id']}").json()
    assert read["last_sync_error"] and read["tool_count"] == 3


def test_deleting_a_server_marks_its_tools_deleted(api):
    server = _time(api)
    response = api.delete(f"/api/v1/mcp_servers/?id={server['id']}")
    assert response.status_code == 200
    assert not McpServer.objects.exists()
    assert not TaskDefinition.objects.filter(integration__name="mcp:time", deleted_at__isnull=True).exists()
    assert "mcp:time" not in {i["name"] for i in api.get("/api/v1/integrations/all?limit=500").json()}


def test_roles_viewers_read_admins_register(api, owner, organization, teammate, make_client):
    server = _time(api)
    Membership.objects.filter(user=teammate, organization=organization).update(role=Membership.Role.VIEWER)
    viewer = make_client(teammate)
    assert viewer.get(f"/api/v1/mcp_servers/?id={server['id']}").status_code == 200
    assert viewer.post(f"/api/v1/mcp_servers/sync?id={server['id']}").status_code == 403
    assert viewer.delete(f"/api/v1/mcp_servers/?id={server['id']}").status_code == 403
    refused = viewer.post(
        "/api/v1/mcp_servers/",
        {"name": "other", "transport": "stdio", "command": TIME_SERVER, "organization": str(organization.id)},
        format="json",
    )
    assert refused.status_code == 403 and refused.json()["code"] == "role_required"


def test_rotating_keys_re_encrypts_server_secrets(api, settings):
    from io import StringIO

    from cryptography.fernet import Fernet
    from django.core.management import call_command

    from apps.credentials.encryption import decrypt_json

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.NEENA_ENCRYPTION_KEYS = [old]
    _time(api)
    settings.NEENA_ENCRYPTION_KEYS = [new, old]
    out = StringIO()
    call_command("rotate_credentials", stdout=out)
    assert "Re-encrypted 1 secrets" in out.getvalue()
    settings.NEENA_ENCRYPTION_KEYS = [new]
    assert decrypt_json(McpServer.objects.get().secret_ciphertext) == {"env": {"TZ_HINT": "secret-value"}}


def test_staff_see_only_their_organizations_mcp_tools_in_the_admin(api, outsider, client):
    from tests.factories import staff_user

    _time(api)
    definition = TaskDefinition.objects.get(python_method_name="get_current_time")
    staff = staff_user("staff@example.com", "view_taskdefinition", "view_integration")
    client.force_login(staff)
    assert client.get("/admin/integrations/taskdefinition/").status_code == 200
    assert "Get Current Time" not in client.get("/admin/integrations/taskdefinition/?q=current").content.decode()
    assert client.get(f"/admin/integrations/taskdefinition/{definition.id}/change/").status_code in (302, 404)
    assert "Format Text" in client.get("/admin/integrations/taskdefinition/?q=format").content.decode()
