"""The ``smtp`` integration: send email through the organization's own mail server.

The credential's config holds ``host``, ``port``, ``username``, ``from_address`` and ``security`` (``starttls``,
``ssl`` or ``none``); its secret ``api_key`` is the SMTP password. The mail server is a user's choice (the
credential's config), so the session connects through the egress guard (``apps/integrations/egress.py``): its host
must resolve to public addresses only, unless it is in NEENA_HTTP_ALLOWLIST, where a mail relay on the local network
goes. A refused address fails the step (``EgressRefusedError``), without a retry; STARTTLS and SSL still check the
certificate for the configured host name.

Each message carries ``Message-ID: <{idempotency key}@neena>``, so a receiver that deduplicates by Message-ID shows a
re-delivered send once. Errors: a 4xx SMTP reply, a dropped connection or a timeout is transient (retried); a 5xx
reply (bad password, unknown recipient, refused content) and a TLS failure are permanent.
"""

import re
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, getaddresses
from typing import Any

from apps.integrations import egress
from apps.integrations.connectors.base import AuthType, ConnectorSpec, DataType, Param, RetryPolicy, TaskSpec
from apps.integrations.execution import CredentialAccess, TaskContext, TaskError, TransientTaskError

# SMTP takes no idempotency key: a retry after a lost answer may deliver twice (receivers may dedupe on the
# Message-ID), so sends retry sparingly.
SEND_RETRY = RetryPolicy(max_retries=2, backoff_seconds=5.0, time_limit_seconds=60)

CONNECTOR = ConnectorSpec(
    name="Email (SMTP)",
    short_name="smtp",
    class_name="SmtpIntegration",
    auth_type=AuthType.BASIC,
    host_config=("host",),
    description="Send email through your own SMTP mail server (host, port, username and password), from your "
    "organization's address.",
    tasks=(
        TaskSpec(
            task_name="Send Email",
            python_method_name="send_email",
            description="Send mail through the organization's own SMTP server (host, port, login and STARTTLS or "
            "SSL come from the credential) to an address, with a subject and a plain-text body.",
            parameters=(
                Param("to", DataType.EMAIL, "The recipient's address."),
                Param("subject", DataType.STRING, "The subject line."),
                Param("body", DataType.TEXT, "The plain-text body."),
                Param("cc", DataType.LIST, "Further addresses to copy in.", optional=True, default=[]),
            ),
            outputs=(Param("message_id", DataType.STRING, "The Message-ID header of the sent mail."),),
            side_effect=True,
            retry=SEND_RETRY,
        ),
    ),
)


# --- Implementations ---------------------------------------------------------------------------------------------

SECURITY_MODES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
# Characters a Message-ID's left part may hold (RFC 5322 dot-atom-text, without a few that confuse mail tools).
NOT_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]")


def send_email(
    context: TaskContext, *, to: str, subject: str, body: str, cc: list[Any] | str | None = None
) -> dict[str, Any]:
    """Steps: read the server settings from the credential, build the message (Message-ID from the idempotency key),
    connect with the configured security, log in when a username is set, send to the recipient and the copies."""
    credential = context.require_credential()
    settings = _server_settings(credential)
    # Each address once: a copy to the recipient (or twice to anyone) would only deliver duplicates.
    recipients = list(dict.fromkeys([_address(to, "to")] + [_address(address, "cc") for address in _addresses(cc)]))
    # The key names the step and its attempt: a redelivered job sends the same Message-ID, a retry a new one.
    message_id = f"<{NOT_ATEXT.sub('.', context.idempotency_key)}@neena>"
    message = EmailMessage()
    try:
        message["From"] = settings["from_address"]
        message["To"] = recipients[0]
        if len(recipients) > 1:
            message["Cc"] = ", ".join(recipients[1:])
        message["Subject"] = subject
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = message_id
        message.set_content(body)
    except ValueError as error:  # a header with a line break, say: never let it through as an injected header
        raise TaskError(f"The email cannot be built: {error}") from error

    try:
        server = _connect(settings, timeout=context.time_limit_seconds)
        try:
            if settings["username"]:
                server.login(settings["username"], settings["password"])
            refused = server.send_message(message, from_addr=settings["envelope_from"], to_addrs=recipients)
        finally:
            _close(server)
    except smtplib.SMTPRecipientsRefused as error:
        raise _recipients_error(error.recipients, delivered=[]) from error
    except smtplib.SMTPResponseException as error:
        raise _reply_error(error.smtp_code, error.smtp_error) from error
    except smtplib.SMTPNotSupportedError as error:
        raise TaskError(f"The SMTP server does not support what the settings ask: {error}") from error
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError) as error:
        raise TransientTaskError(f"The TLS connection to {settings['host']} broke off: {error}") from error
    except ssl.SSLError as error:  # an untrusted certificate, a server not speaking TLS on that port
        raise TaskError(f"TLS with the SMTP server {settings['host']} failed: {error}") from error
    except (smtplib.SMTPException, OSError) as error:  # disconnects, refused connections, timeouts
        raise TransientTaskError(
            f"The SMTP server {settings['host']}:{settings['port']} could not be reached: {type(error).__name__}: "
            f"{error}"
        ) from error
    if refused:
        # The server took the message for the others: failing without retrying reports it without a second copy.
        raise _recipients_error(refused, delivered=[r for r in recipients if r not in refused], retry=False)
    return {"message_id": message_id}


def _server_settings(credential: CredentialAccess) -> dict[str, Any]:
    config = credential.config
    security = str(config.get("security") or "starttls").lower()
    if security not in SECURITY_MODES:
        raise TaskError(f"Unknown SMTP security '{security}': use one of {', '.join(SECURITY_MODES)}.")
    host = str(config.get("host") or "").strip()
    from_address = str(config.get("from_address") or config.get("username") or "").strip()
    if not host or not from_address:
        raise TaskError("The SMTP credential needs 'host' and 'from_address' in its config.")
    try:
        port = int(config.get("port") or DEFAULT_PORTS[security])
    except (TypeError, ValueError) as error:
        raise TaskError(f"The SMTP port '{config.get('port')}' is not a number.") from error
    return {
        "host": host,
        "port": port,
        "security": security,
        "username": str(config.get("username") or ""),
        "password": str(credential.secrets.get("api_key") or credential.secrets.get("password") or ""),
        "from_address": from_address,
        "envelope_from": _address(from_address, "from_address"),
    }


def tls_context() -> ssl.SSLContext:
    """The TLS settings for the mail server: the system's trusted CAs and host name checks."""
    return ssl.create_default_context()


class GuardedSMTP(smtplib.SMTP):
    """smtplib's session with its socket opened by the egress guard (a checked address, resolved once).

    ``_get_socket`` is the hook smtplib itself overrides for SMTP_SSL and LMTP; the host name stays the session's
    (``self._host``), so STARTTLS checks the certificate for it.
    """

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return egress.connect(host, port, timeout=timeout)


class GuardedSMTPSSL(smtplib.SMTP_SSL):
    """SMTP over TLS from the first byte, on a socket the egress guard opened; SNI and the certificate check name the
    configured host (``host`` is the constructor's, the port being always given), as in smtplib's own SMTP_SSL."""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return self.context.wrap_socket(egress.connect(host, port, timeout=timeout), server_hostname=host)


def _connect(settings: dict[str, Any], *, timeout: float) -> smtplib.SMTP:
    """An open session with the configured security; STARTTLS is required, not opportunistic, when asked for."""
    if settings["security"] == "ssl":
        return GuardedSMTPSSL(settings["host"], settings["port"], timeout=timeout, context=tls_context())
    server = GuardedSMTP(settings["host"], settings["port"], timeout=timeout)
    try:
        if settings["security"] == "starttls":
            server.ehlo()
            server.starttls(context=tls_context())
            server.ehlo()
    except BaseException:
        server.close()
        raise
    return server


def _close(server: smtplib.SMTP) -> None:
    """Says QUIT and closes; a failure here comes after the message was accepted, so it must not fail the send (a
    retry would deliver a second copy)."""
    try:
        server.quit()
    except (smtplib.SMTPException, OSError):
        server.close()


def _addresses(value: list[Any] | str | None) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [str(item).strip() for item in value if str(item).strip()]


def _address(value: str, field: str) -> str:
    """A bare address (``Ann <ann@example.com>`` gives ``ann@example.com``); TaskError for anything else."""
    parsed = getaddresses([value])
    if len(parsed) != 1 or "@" not in parsed[0][1] or any(char in value for char in "\r\n"):
        raise TaskError(f"'{value}' is not one email address ({field}).")
    return parsed[0][1]


def _reply_error(code: int, reply: bytes | str) -> TaskError:
    """5xx replies mean "never"; 4xx mean "not now", and so (retried) does a garbled reply (code -1)."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    if 500 <= code < 600:
        return TaskError(f"The SMTP server refused ({code}): {text}")
    return TransientTaskError(f"The SMTP server answered {code} (try again later): {text}")


def _recipients_error(refused: dict[str, tuple[int, bytes]], *, delivered: list[str], retry: bool = True) -> TaskError:
    details = "; ".join(
        f"{address}: {code} {reply.decode('utf-8', 'replace')}" for address, (code, reply) in refused.items()
    )
    if delivered:
        return TaskError(f"The email went to {', '.join(delivered)} but was refused for {details}.")
    if retry and all(400 <= code < 500 for code, _ in refused.values()):
        return TransientTaskError(f"The SMTP server deferred every recipient (try again later): {details}")
    return TaskError(f"The SMTP server refused every recipient: {details}")
