"""The ``smtp`` connector against a real SMTP server (aiosmtpd) on 127.0.0.1: envelope, headers, AUTH, TLS, errors."""

import email
import email.policy
import socket
import uuid
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from apps.integrations.connectors import smtp as connector
from apps.integrations.connectors.smtp import send_email
from apps.integrations.execution import CredentialAccess, TaskContext, TaskError, TransientTaskError
from tests.fakes.tls import self_signed_certificate
from tests.integrations.egress_helpers import rebinding_resolver

USERNAME, PASSWORD = "mailer", "s3cret"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: email.message.EmailMessage
    login: str | None
    over_tls: bool


@dataclass
class Recorder:
    """The server's handler: keeps each delivered message; ``rcpt_replies``/``data_reply`` make it refuse."""

    received: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str = ""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd's name)
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        if self.data_reply:
            return self.data_reply
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        login = session.auth_data.login.decode() if session.authenticated else None
        over_tls = server.transport.get_extra_info("ssl_object") is not None
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message, login, over_tls))
        return "250 Message accepted"


def _authenticate(server, session, envelope, mechanism, auth_data):
    accepted = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USERNAME.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=accepted, handled=False, auth_data=auth_data if accepted else None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return self_signed_certificate(tmp_path_factory.mktemp("tls"), ["127.0.0.1"])


@pytest.fixture
def trust_test_certificate(monkeypatch, certificate):
    """The connector trusts the test certificate (and, as in production, checks the host name against it)."""
    monkeypatch.setattr(connector, "tls_context", certificate.client_context)


@pytest.fixture
def start_server():
    """``start_server(**aiosmtpd options)``: a running server on 127.0.0.1 and its recorder; stopped afterwards."""
    controllers = []

    def start(**options):
        recorder = Recorder()
        controller = Controller(
            recorder,
            hostname="127.0.0.1",
            port=_free_port(),
            authenticator=_authenticate,
            **options,
        )
        controller.start()
        controllers.append(controller)
        return controller, recorder

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture(autouse=True)
def _mail_server_allow_listed(settings):
    """The test server is on 127.0.0.1 and the SMTP host is a user's choice (the credential's config): reachable
    because 127.0.0.1 is allow-listed, as a mail relay on the local network would be. The address tests below empty
    the allow-list again."""
    settings.NEENA_HTTP_ALLOWLIST = ["127.0.0.1"]


def _context(port: int, *, security: str = "none", username: str = USERNAME, password: str = PASSWORD, **config):
    return TaskContext(
        organization_id=uuid.uuid4(),
        flow_run_id=uuid.uuid4(),
        flow_request_id=uuid.uuid4(),
        task_run_id=uuid.uuid4(),
        idempotency_key="7a1c2e9e-0c1d-4d3f-9a55-3f1b2b6f2a10:1",
        integration_entity=None,
        credential=CredentialAccess(
            credential_id=uuid.uuid4(),
            secrets={"api_key": password},
            config={
                "host": "127.0.0.1",
                "port": port,
                "username": username,
                "from_address": "Neena Bot <bot@neena.example>",
                "security": security,
                **config,
            },
        ),
        time_limit_seconds=5,
    )


def _send(context: TaskContext, **overrides):
    parameters = {"to": "ann@example.com", "subject": "Your order", "body": "It shipped today.\nThanks!"}
    return send_email(context, **{**parameters, **overrides})


# --- Delivery ---------------------------------------------------------------------------------------------------


def test_sends_with_auth_the_exact_envelope_and_headers(start_server):
    controller, recorder = start_server(auth_require_tls=False)

    outputs = _send(_context(controller.port), cc=["bob@example.com", "Cy <cy@example.com>"])

    assert outputs == {"message_id": "<7a1c2e9e-0c1d-4d3f-9a55-3f1b2b6f2a10.1@neena>"}
    [received] = recorder.received
    assert received.mail_from == "bot@neena.example"
    assert received.rcpt_tos == ["ann@example.com", "bob@example.com", "cy@example.com"]
    assert received.login == USERNAME
    message = received.message
    assert message["From"] == "Neena Bot <bot@neena.example>"
    assert message["To"] == "ann@example.com"
    assert message["Cc"] == "bob@example.com, cy@example.com"
    assert message["Subject"] == "Your order"
    assert message["Message-ID"] == outputs["message_id"]
    assert message["Date"]
    assert message.get_content().replace("\r\n", "\n") == "It shipped today.\nThanks!\n"


def test_a_redelivered_job_sends_the_same_message_id(start_server):
    controller, recorder = start_server(auth_require_tls=False)
    context = _context(controller.port)

    first, second = _send(context), _send(context)

    assert first == second
    assert [r.message["Message-ID"] for r in recorder.received] == [first["message_id"]] * 2


def test_without_a_username_there_is_no_login(start_server):
    controller, recorder = start_server()

    _send(_context(controller.port, username=""), cc="bob@example.com")

    [received] = recorder.received
    assert (received.login, received.rcpt_tos) == (None, ["ann@example.com", "bob@example.com"])


def test_each_address_gets_one_copy(start_server):
    """The planner binds a cc from the request's first address, which is usually the recipient's."""
    controller, recorder = start_server()

    _send(_context(controller.port, username=""), cc=["ann@example.com", "bob@example.com", "bob@example.com"])

    [received] = recorder.received
    assert received.rcpt_tos == ["ann@example.com", "bob@example.com"]
    assert received.message["Cc"] == "bob@example.com"


def test_starttls_upgrades_before_logging_in(start_server, certificate, trust_test_certificate):
    controller, recorder = start_server(tls_context=certificate.server_context(), require_starttls=True)

    _send(_context(controller.port, security="starttls"))

    [received] = recorder.received
    assert (received.over_tls, received.login) == (True, USERNAME)


def test_implicit_tls(start_server, certificate, trust_test_certificate):
    # aiosmtpd offers AUTH only after STARTTLS unless told otherwise; here the whole session is TLS.
    controller, recorder = start_server(ssl_context=certificate.server_context(), auth_require_tls=False)

    _send(_context(controller.port, security="ssl"))

    [received] = recorder.received
    assert (received.over_tls, received.login) == (True, USERNAME)


# --- Failures ---------------------------------------------------------------------------------------------------


def test_a_wrong_password_is_permanent(start_server):
    controller, recorder = start_server(auth_require_tls=False)

    with pytest.raises(TaskError, match="535") as refused:
        _send(_context(controller.port, password="wrong"))

    assert not isinstance(refused.value, TransientTaskError)
    assert recorder.received == []


def test_an_untrusted_certificate_is_permanent(start_server, certificate):
    controller, recorder = start_server(tls_context=certificate.server_context(), require_starttls=True)

    with pytest.raises(TaskError, match="TLS") as refused:
        _send(_context(controller.port, security="starttls"))

    assert not isinstance(refused.value, TransientTaskError)
    assert recorder.received == []


def test_starttls_is_required_when_configured(start_server):
    controller, recorder = start_server(auth_require_tls=False)

    with pytest.raises(TaskError, match="does not support") as refused:
        _send(_context(controller.port, security="starttls"))

    assert not isinstance(refused.value, TransientTaskError)
    assert recorder.received == []


@pytest.mark.parametrize(
    "rcpt_reply, data_reply, transient",
    [
        ("550 5.1.1 No such user", "", False),
        ("451 4.7.1 Greylisted, try again", "", True),
        ("", "554 5.7.1 Message rejected as spam", False),
        ("", "452 4.3.1 Insufficient storage", True),
    ],
)
def test_4xx_replies_are_transient_and_5xx_permanent(start_server, rcpt_reply, data_reply, transient):
    controller, recorder = start_server(auth_require_tls=False)
    if rcpt_reply:
        recorder.rcpt_replies["ann@example.com"] = rcpt_reply
    recorder.data_reply = data_reply

    with pytest.raises(TaskError, match=(rcpt_reply or data_reply)[:3]) as failed:
        _send(_context(controller.port))

    assert isinstance(failed.value, TransientTaskError) is transient


def test_a_partly_refused_send_fails_without_a_retry(start_server):
    controller, recorder = start_server(auth_require_tls=False)
    recorder.rcpt_replies["bob@example.com"] = "550 5.1.1 No such user"

    with pytest.raises(TaskError, match=r"went to ann@example\.com but was refused for bob@example\.com") as failed:
        _send(_context(controller.port), cc=["bob@example.com"])

    assert not isinstance(failed.value, TransientTaskError)
    assert [r.rcpt_tos for r in recorder.received] == [["ann@example.com"]]


def test_an_unreachable_server_is_transient():
    with pytest.raises(TransientTaskError, match="could not be reached"):
        _send(_context(_free_port()))


@pytest.mark.parametrize("subject", ["Hi\r\nBcc: victim@example.com", "Hi\nX-Injected: yes"])
def test_header_injection_is_refused(start_server, subject):
    controller, recorder = start_server(auth_require_tls=False)

    with pytest.raises(TaskError, match="cannot be built"):
        _send(_context(controller.port), subject=subject)

    assert recorder.received == []


def test_bad_addresses_and_settings_are_refused_before_connecting():
    port = _free_port()  # nothing listens: reaching the network would be a transient error, not these

    with pytest.raises(TaskError, match="not one email address"):
        _send(_context(port), to="ann@example.com\r\nRCPT TO:<x@evil.example>")
    with pytest.raises(TaskError, match="Unknown SMTP security"):
        _send(_context(port, security="tls1.0"))
    with pytest.raises(TaskError, match="needs 'host'"):
        _send(_context(port, host=""))
    with pytest.raises(TaskError, match="needs a credential"):
        _send(
            TaskContext(
                organization_id=uuid.uuid4(),
                flow_run_id=uuid.uuid4(),
                flow_request_id=uuid.uuid4(),
                task_run_id=uuid.uuid4(),
                idempotency_key="k",
                integration_entity=None,
            )
        )


# --- Addresses: the egress guard -------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_mail_server_on_an_internal_address_is_refused_unless_allow_listed(start_server, settings, host):
    controller, recorder = start_server()
    settings.NEENA_HTTP_ALLOWLIST = []

    with pytest.raises(TaskError, match="resolves to a loopback address") as refused:
        _send(_context(controller.port, username="", host=host))

    assert not isinstance(refused.value, TransientTaskError)
    assert "NEENA_HTTP_ALLOWLIST" in str(refused.value)
    assert recorder.received == []


def test_a_mail_server_name_rebound_to_loopback_after_the_check_never_reaches_it(start_server, settings, monkeypatch):
    """DNS rebinding: the name answers a public address first and 127.0.0.1 afterwards; the session connects to the
    address that was checked, never resolving the name again."""
    controller, recorder = start_server()
    settings.NEENA_HTTP_ALLOWLIST = []
    lookups, connections = rebinding_resolver(monkeypatch, "mail.rebind.test", first=["93.184.216.34"])

    with pytest.raises(TransientTaskError, match="could not be reached"):
        _send(_context(controller.port, username="", host="mail.rebind.test"))

    assert connections == [("93.184.216.34", controller.port)]
    assert lookups == ["mail.rebind.test"]
    assert recorder.received == []


def test_declaration():
    [task] = connector.CONNECTOR.tasks

    assert (connector.CONNECTOR.short_name, connector.CONNECTOR.auth_type) == ("smtp", "basic")
    assert (task.task_name, task.python_method_name, task.side_effect) == ("Send Email", "send_email", True)
    assert [p.name for p in task.parameters] == ["to", "subject", "body", "cc"]
    assert [p.name for p in task.outputs] == ["message_id"]
