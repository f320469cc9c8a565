"""Gmail's messages as Python sees them: building the RFC 2822 message ``users.messages.send`` takes (base64url
``raw``), and reading the JSON payload ``users.messages.get`` answers (headers, MIME parts, text, snippet)."""

import base64
import html
import re
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.policy import SMTP
from email.utils import formataddr, getaddresses, parseaddr
from typing import Any

from django.conf import settings

from apps.integrations.execution import TaskError


def message_id_header(idempotency_key: str) -> str:
    """``<neena.<key>@<Neena's mail domain>>``: the same for every delivery of one attempt, and sharing the step id
    across attempts, so a duplicate send is recognisable."""
    local = re.sub(r"[^A-Za-z0-9-]+", ".", idempotency_key).strip(".") or "message"
    domain = settings.NEENA_SYSTEM_EMAIL.rpartition("@")[2] or "neena.local"
    return f"<neena.{local}@{domain}>"


def header_addresses(value: str, what: str) -> str:
    """The addresses in a To/Cc value, each checked and formatted for the header (an international domain in its
    ASCII form); TaskError naming any bad one. A non-ASCII local part is refused: the message is sent without
    SMTPUTF8."""
    formatted, invalid = [], []
    for name, address in getaddresses([value]):
        if not name and not address:
            continue
        local, at, domain = address.rpartition("@")
        try:
            local.encode("ascii")
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            local = ""
        if not (at and local and domain):
            invalid.append(name or address)
            continue
        formatted.append(formataddr((name, f"{local}@{domain}")))
    if invalid:
        raise TaskError(f"Not an email address in {what}: {', '.join(invalid)}.")
    return ", ".join(formatted)


def raw_message(
    *, to: str, subject: str, body: str, cc: str = "", message_id: str, replying_to: str = "", references: str = ""
) -> str:
    """The RFC 2822 message (plain text, UTF-8) as base64url, the form users.messages.send takes in ``raw``."""
    recipients = header_addresses(to, "To")
    if not recipients:
        raise TaskError("The message needs a recipient (To).")
    message = EmailMessage(policy=SMTP)
    try:
        message["To"] = recipients
        copies = header_addresses(cc, "Cc")
        if copies:
            message["Cc"] = copies
        message["Subject"] = subject
        message["Message-ID"] = message_id
        if replying_to:
            message["In-Reply-To"] = replying_to
            message["References"] = references or replying_to
        message.set_content(body)
        data = message.as_bytes()
    except (ValueError, MessageError) as error:  # e.g. a line break inside a header value
        raise TaskError(f"The message cannot be built: {error}") from error
    return base64.urlsafe_b64encode(data).decode("ascii")


def part_headers(part: dict[str, Any]) -> dict[str, str]:
    """A message part's header values by lower-cased name (the first of a repeated header)."""
    found: dict[str, str] = {}
    for header in part.get("headers") or []:
        found.setdefault(str(header.get("name", "")).lower(), str(header.get("value", "")))
    return found


def decoded_header(value: str) -> str:
    """A header value with any RFC 2047 encoded words decoded (``=?utf-8?q?Caf=C3=A9?=`` -> ``Café``)."""
    try:
        return str(make_header(decode_header(value)))
    except (LookupError, UnicodeDecodeError, ValueError, MessageError):
        return value


def sender_address(headers: dict[str, str]) -> str:
    """The bare address of the From header (the display name and any encoding dropped)."""
    return parseaddr(headers.get("from", ""))[1]


def inline_part(part: dict[str, Any], mime_type: str) -> dict[str, Any] | None:
    """Depth first, the first part of that type carrying its data inline and not an attachment (no filename)."""
    if (
        str(part.get("mimeType", "")).lower() == mime_type
        and not part.get("filename")
        and (part.get("body") or {}).get("data")
    ):
        return part
    for child in part.get("parts") or []:
        found = inline_part(child, mime_type)
        if found is not None:
            return found
    return None


def part_text(part: dict[str, Any]) -> str:
    """A part's data: base64url (Gmail may leave off the padding), in the charset its Content-Type names."""
    data = str(part["body"]["data"])
    try:
        raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except ValueError as error:
        raise TaskError("Gmail's answer holds a message part that is not valid base64url.") from error
    content_type = Message()
    content_type["Content-Type"] = part_headers(part).get("content-type", "text/plain")
    charset = content_type.get_content_charset() or "utf-8"
    try:
        text = raw.decode(charset, errors="replace")
    except LookupError:
        text = raw.decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n")


def html_as_text(markup: str) -> str:
    """A readable approximation of an HTML-only message: no scripts or styles, tags dropped, entities decoded."""
    markup = re.sub(r"(?is)<(script|style|head)\b.*?</\1\s*>", " ", markup)
    markup = re.sub(r"(?i)<br\s*/?>|</(?:p|div|li|tr|h[1-6])\s*>", "\n", markup)
    text = html.unescape(re.sub(r"<[^>]*>", "", markup))
    lines = (re.sub(r"[ \t\xa0]+", " ", line).strip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def body_text(payload: dict[str, Any]) -> str:
    """The message's text: its text/plain part, else its text/html part as text, else empty."""
    plain = inline_part(payload, "text/plain")
    if plain is not None:
        return part_text(plain)
    rich = inline_part(payload, "text/html")
    return html_as_text(part_text(rich)) if rich is not None else ""


def snippet_text(message: dict[str, Any]) -> str:
    """Gmail's snippet, whose quotes and ampersands come HTML-escaped (``&#39;``)."""
    return html.unescape(str(message.get("snippet", "")))
