"""MCP server rules: who may register one, what it may run or reach, and how its tools become task definitions.

Registering and syncing talk to the server (start it, or connect to it) before any transaction opens; only the write
of what it answered is transactional. A stdio server runs only a command the operator allowed
(``NEENA_MCP_STDIO_COMMANDS``), with an environment that cannot change how that command loads code; an HTTP server is
reached through the egress guard, as every connector is.
"""

import re
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from mcp.types import Tool

from apps.accounts.models import Membership, User
from apps.accounts.roles import role_require
from apps.accounts.selectors import organization_for_write
from apps.audit.services import audit_event_record
from apps.core.exceptions import ApplicationError, ErrorItem, InputValidationError, NotFoundError
from apps.credentials.encryption import decrypt_json, encrypt_json, reencrypt
from apps.integrations import egress
from apps.integrations.services import owned_integration_delete, owned_integration_sync
from apps.mcp_servers.client import (
    MAX_SCHEMA_BYTES,
    McpProtocolError,
    McpUnavailableError,
    ServerAddress,
    schema_size,
    tools_list,
)
from apps.mcp_servers.models import McpServer
from apps.mcp_servers.tools import CLASS_NAME, TOOL_NAME, tool_hints, tool_task_spec

Transport = McpServer.Transport

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}$")
# Variables that decide which code a process loads or where it looks for it: a server's env may not set them, or an
# allowed command could be made to run something else.
ENV_REFUSED_NAMES = frozenset(
    {"PATH", "HOME", "SHELL", "ENV", "BASH_ENV", "IFS", "PS4", "PROMPT_COMMAND", "TMPDIR", "USER", "LOGNAME"}
)
ENV_REFUSED_PREFIXES = ("LD_", "DYLD_", "PYTHON", "GIT_", "NODE_", "NPM_CONFIG_", "PERL5", "RUBY", "JAVA_", "_JAVA_")
# Headers the HTTP client and the MCP transport set themselves.
HEADERS_REFUSED = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection", "accept", "mcp-session-id"}
)
MAX_ITEMS = 50
MAX_VALUE_CHARS = 4096
MAX_ARG_CHARS = 1000


class McpSyncError(ApplicationError):
    """The server could not be listed (down, refused, not MCP): 502, and the server's last_sync_error says why."""

    status_code = 502
    default_code = "mcp_server_unavailable"


def _strings(value: Any, loc: list[str | int], problems: list[ErrorItem], limit: int) -> None:
    if any(not isinstance(item, str) or "\x00" in item or len(item) > limit for item in value):
        message = f"Each value must be text of at most {limit} characters."
        problems.append(ErrorItem(loc=loc, msg=message, type="invalid"))


def _env_problems(env: dict[str, Any]) -> list[ErrorItem]:
    problems: list[ErrorItem] = []
    if len(env) > MAX_ITEMS:
        problems.append(ErrorItem(loc=["body", "env"], msg=f"At most {MAX_ITEMS} variables.", type="too_many"))
    for name in env:
        loc: list[str | int] = ["body", "env", name]
        if not ENV_NAME.match(name):
            problems.append(ErrorItem(loc=loc, msg="Not a variable name (letters, digits, _).", type="invalid"))
        elif name.upper() in ENV_REFUSED_NAMES or name.upper().startswith(ENV_REFUSED_PREFIXES):
            problems.append(
                ErrorItem(
                    loc=loc,
                    msg=f"'{name}' decides which program or code the server runs, and may not be set.",
                    type="env_refused",
                )
            )
    _strings(env.values(), ["body", "env"], problems, MAX_VALUE_CHARS)
    return problems


def _header_problems(headers: dict[str, Any]) -> list[ErrorItem]:
    problems: list[ErrorItem] = []
    if len(headers) > MAX_ITEMS:
        problems.append(ErrorItem(loc=["body", "headers"], msg=f"At most {MAX_ITEMS} headers.", type="too_many"))
    for name, value in headers.items():
        loc: list[str | int] = ["body", "headers", name]
        if not HEADER_NAME.match(name) or name.lower() in HEADERS_REFUSED:
            problems.append(ErrorItem(loc=loc, msg=f"'{name}' cannot be set as a header here.", type="invalid"))
        elif not isinstance(value, str) or any(char in value for char in "\r\n\x00") or len(value) > MAX_VALUE_CHARS:
            problems.append(ErrorItem(loc=loc, msg="A header value is one line of text.", type="invalid"))
    return problems


def _stdio_problems(command: str, args: Sequence[Any]) -> list[ErrorItem]:
    allowed = settings.NEENA_MCP_STDIO_COMMANDS
    problems: list[ErrorItem] = []
    if not command:
        problems.append(ErrorItem(loc=["body", "command"], msg="A stdio server needs its command.", type="missing"))
    elif command not in allowed:
        named = ", ".join(allowed) if allowed else "none"
        problems.append(
            ErrorItem(
                loc=["body", "command"],
                msg=f"'{command[:200]}' is not a command this deployment allows (NEENA_MCP_STDIO_COMMANDS: {named}).",
                type="command_not_allowed",
            )
        )
    if len(args) > MAX_ITEMS:
        problems.append(ErrorItem(loc=["body", "args"], msg=f"At most {MAX_ITEMS} arguments.", type="too_many"))
    _strings(args, ["body", "args"], problems, MAX_ARG_CHARS)
    return problems


def _url_problems(url: str) -> list[ErrorItem]:
    loc: list[str | int] = ["body", "url"]
    origin = egress.url_origin(url) if url else None
    if origin is None:
        return [ErrorItem(loc=loc, msg="A streamable_http server needs an http or https URL.", type="invalid")]
    refused = egress.literal_host_problem(origin[0])
    if refused:
        return [
            ErrorItem(
                loc=loc,
                msg=f"{refused}; internal targets are only reachable when their host is in NEENA_HTTP_ALLOWLIST.",
                type="address_refused",
            )
        ]
    return []


def _unused(given: dict[str, Any], transport: str) -> list[ErrorItem]:
    return [
        ErrorItem(loc=["body", name], msg=f"A {transport} server takes no {name}.", type="unexpected")
        for name, value in given.items()
        if value
    ]


def mcp_server_check(
    *,
    name: str,
    transport: str,
    command: str = "",
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    url: str = "",
    headers: dict[str, str] | None = None,
) -> ServerAddress:
    """Every problem with a registration at once (422), without starting or reaching anything; else its address."""
    env, headers = env or {}, headers or {}
    problems: list[ErrorItem] = []
    if not NAME.match(name):
        problems.append(
            ErrorItem(
                loc=["body", "name"],
                msg="1 to 40 letters, digits, '.', '_' or '-', starting with a letter or digit.",
                type="invalid",
            )
        )
    if transport == Transport.STDIO:
        problems += _stdio_problems(command, args) + _env_problems(env)
        problems += _unused({"url": url, "headers": headers}, transport)
    else:
        problems += _url_problems(url) + _header_problems(headers)
        problems += _unused({"command": command, "args": args, "env": env}, transport)
    if problems:
        raise InputValidationError(problems)
    return ServerAddress(
        transport=transport, command=command, args=tuple(args), env=dict(env), url=url, headers=dict(headers)
    )


def mcp_server_address(server: McpServer) -> ServerAddress:
    """Where the server is, with its secrets decrypted (DecryptionError when no configured key opens them)."""
    secrets = decrypt_json(server.secret_ciphertext) if server.secret_ciphertext else {}
    return ServerAddress(
        transport=server.transport,
        command=server.command,
        args=tuple(server.args),
        env=dict(secrets.get("env") or {}),
        url=server.url,
        headers=dict(secrets.get("headers") or {}),
    )


def _tools_fetch(address: ServerAddress) -> list[Tool]:
    """The server's tools, each checked; McpUnavailableError, McpProtocolError or EgressRefusedError otherwise."""
    tools = tools_list(address, timeout=settings.NEENA_MCP_TIMEOUT_SECONDS)
    seen: set[str] = set()
    for tool in tools:
        if not TOOL_NAME.match(tool.name) or tool.name in seen:
            raise McpProtocolError(f"The server declares a tool named {tool.name[:130]!r} twice or unusably.")
        if schema_size(tool) > MAX_SCHEMA_BYTES:
            raise McpProtocolError(f"The schemas of the tool '{tool.name}' exceed {MAX_SCHEMA_BYTES} bytes.")
        seen.add(tool.name)
    return tools


def _tools_or_reason(address: ServerAddress) -> tuple[list[Tool] | None, str]:
    try:
        return _tools_fetch(address), ""
    except (McpUnavailableError, McpProtocolError, egress.EgressRefusedError) as error:
        return None, str(error)[:2000]


def _integration_write(server: McpServer, tools: list[Tool]) -> None:
    """The server's integration and a task definition per tool (inside the caller's transaction)."""
    server.integration = owned_integration_sync(
        organization_id=server.organization_id,
        short_name=f"mcp-{server.id.hex}",
        name=str(server),
        class_name=CLASS_NAME,
        description=f"The tools of the MCP server '{server.name}' ({server.transport}).",
        tasks=[tool_task_spec(tool) for tool in tools],
    )
    server.tool_hints = {tool.name: tool_hints(tool).as_json() for tool in tools}
    server.tool_count = len(tools)
    server.last_synced_at = timezone.now()
    server.last_sync_error = ""


def _described(server: McpServer) -> dict[str, Any]:
    return {
        "name": server.name,
        "transport": server.transport,
        "command": server.command,
        "url": server.url,
        "env_names": server.env_names,
        "header_names": server.header_names,
        "tool_count": server.tool_count,
    }


def mcp_server_register(
    *,
    user: User,
    name: str,
    transport: str,
    command: str = "",
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    url: str = "",
    headers: dict[str, str] | None = None,
    organization: Any = None,
) -> McpServer:
    """Checks the registration, lists the server's tools (it must answer: a server that cannot be listed is not
    saved, 422 naming why), then saves it with a task definition per tool. Admins only."""
    target = organization_for_write(user=user, organization_id=organization, role=Membership.Role.ADMIN)
    address = mcp_server_check(
        name=name, transport=transport, command=command, args=args, env=env, url=url, headers=headers
    )
    if McpServer.objects.filter(organization=target, name=name).exists():
        raise InputValidationError.single(["body", "name"], f"An MCP server '{name}' exists already.", "duplicate")
    if McpServer.objects.filter(organization=target).count() >= settings.NEENA_MCP_MAX_SERVERS:
        raise InputValidationError.single(
            ["body", "name"],
            f"An organization has at most {settings.NEENA_MCP_MAX_SERVERS} MCP servers (NEENA_MCP_MAX_SERVERS).",
            "too_many",
        )
    tools, reason = _tools_or_reason(address)
    if tools is None:
        loc = "command" if transport == Transport.STDIO else "url"
        raise InputValidationError.single(["body", loc], f"The MCP server could not be listed: {reason}", "unavailable")
    secrets = {key: value for key, value in (("env", address.env), ("headers", address.headers)) if value}
    try:
        with transaction.atomic():
            server = McpServer.objects.create(
                organization=target,
                name=name,
                transport=transport,
                command=command,
                args=list(args),
                url=url,
                secret_ciphertext=encrypt_json(secrets) if secrets else "",
                env_names=sorted(address.env),
                header_names=sorted(address.headers),
                created_by_email=user.email,
                modified_by_email=user.email,
            )
            _integration_write(server, tools)
            server.save()
            audit_event_record(
                organization_id=target.id,
                actor=user,
                action="mcp_server.registered",
                object_type="mcp_server",
                object_id=server.id,
                after=_described(server),
            )
    except IntegrityError:  # registered by a concurrent request after the check above
        raise InputValidationError.single(
            ["body", "name"], f"An MCP server '{name}' exists already.", "duplicate"
        ) from None
    return server


def mcp_server_sync(*, user: User, server: McpServer) -> McpServer:
    """Lists the tools again: changed ones are updated, new ones added, removed ones marked deleted (flows that name
    them keep them, and their steps fail saying the tool is gone). A server that cannot be listed keeps its tools;
    the failure is recorded in last_sync_error and answered 502."""
    role_require(user=user, organization_id=server.organization_id, role=Membership.Role.ADMIN)
    tools, reason = _tools_or_reason(mcp_server_address(server))
    with transaction.atomic():
        locked = McpServer.objects.select_for_update().filter(id=server.id).first()
        if locked is None:
            raise NotFoundError("MCP server not found.")
        before = _described(locked)
        if tools is None:
            locked.last_sync_error = reason
            locked.save(update_fields=["last_sync_error", "modified_date"])
        else:
            _integration_write(locked, tools)
            locked.modified_by_email = user.email
            locked.save()
            audit_event_record(
                organization_id=locked.organization_id,
                actor=user,
                action="mcp_server.synced",
                object_type="mcp_server",
                object_id=locked.id,
                before=before,
                after=_described(locked),
            )
    if tools is None:
        raise McpSyncError(f"The MCP server '{locked.name}' could not be listed: {reason}")
    return locked


@transaction.atomic
def mcp_server_delete(*, user: User, server: McpServer) -> None:
    """Removes the server; its integration and task definitions are marked deleted (flows naming them keep them)."""
    role_require(user=user, organization_id=server.organization_id, role=Membership.Role.ADMIN)
    if server.integration_id is not None:
        owned_integration_delete(integration_id=server.integration_id)
    audit_event_record(
        organization_id=server.organization_id,
        actor=user,
        action="mcp_server.deleted",
        object_type="mcp_server",
        object_id=server.id,
        before=_described(server),
    )
    server.delete()


@transaction.atomic
def mcp_server_secrets_reencrypt() -> int:
    """Re-encrypts every server's env and headers with the newest of NEENA_ENCRYPTION_KEYS; returns how many."""
    count = 0
    for server in McpServer.objects.select_for_update().exclude(secret_ciphertext=""):
        server.secret_ciphertext = reencrypt(server.secret_ciphertext)
        server.save(update_fields=["secret_ciphertext"])
        count += 1
    return count
