"""Structured logs: every log line, from structlog or from a stdlib logger (Django, Celery, the engine's own
``logging.getLogger``), goes through the same processors and comes out as one JSON object per line (production) or
a readable line (development and tests), chosen by NEENA_LOG_FORMAT.

Each line carries ``timestamp``, ``level``, ``logger``, ``event`` and whatever the context has bound: ``request_id``
(``apps.core.request_id``), ``task`` and ``task_id`` in a job, ``run_id`` and ``step_id`` while the engine works on
a step. ``redact_secrets`` runs last before rendering, so no token, secret or signature is written, whoever logged it.

``LOGGING`` (``logging_config``) names ``formatter`` as its formatter factory, so configuring Django's logging (at
``django.setup()``, and in Celery through its ``setup_logging`` signal) configures structlog too.
"""

import base64
import binascii
import logging
import re
from collections.abc import Mapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LOG_FORMATS = ("json", "console")
REDACTED = "[redacted]"

# Keys whose values are secrets whatever they hold: tokens, keys, passwords, headers that authenticate.
_SECRET_KEY = re.compile(
    r"token|secret|passw|authorization|api[_-]?key|credential|signature|cookie|session[_-]?id|private[_-]?key", re.I
)
# Secrets written inside a text: a bearer token ("Bearer abc"; Basic credentials below), or a query-string or form
# parameter named like a secret ("?key=...&token=...", as Trello's API wants them).
_SECRET_IN_TEXT = (
    (re.compile(r"\b(Bearer)\s+[A-Za-z0-9._~+/=-]+", re.I), rf"\1 {REDACTED}"),
    (
        re.compile(
            r"\b([\w-]*(?:token|secret|passw\w*|api[_-]?key|key|signature|credential)[\w-]*)=([^&\s\"',;]+)", re.I
        ),
        rf"\1={REDACTED}",
    ),
)


_BASIC_CREDENTIALS = re.compile(r"\b(Basic)\s+([A-Za-z0-9+/]{4,}={0,2})", re.I)


def _basic_credentials(match: re.Match[str]) -> str:
    """Basic credentials are base64 of "user:password"; the word "Basic" in a sentence is left alone."""
    try:
        decoded = base64.b64decode(match.group(2) + "=" * (-len(match.group(2)) % 4), validate=True)
    except (binascii.Error, ValueError):
        return match.group(0)
    return f"{match.group(1)} {REDACTED}" if b":" in decoded else match.group(0)


def _redact_text(text: str) -> str:
    for pattern, replacement in _SECRET_IN_TEXT:
        text = pattern.sub(replacement, text)
    return _BASIC_CREDENTIALS.sub(_basic_credentials, text)


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return _redact_text(value)
    if isinstance(value, Mapping):
        return {key: REDACTED if _SECRET_KEY.search(str(key)) else _redact(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [_redact(item) for item in value]
    return value


def redact_secrets(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """A structlog processor: secret-named keys lose their values, and secrets inside texts (the message, a formatted
    exception) are masked. Other values are left alone: anything else is turned into text by the renderer, and what
    is logged on purpose (ids, statuses, durations) holds no secret."""
    return {
        key: REDACTED if _SECRET_KEY.search(key) and key != "event" else _redact(value)
        for key, value in event_dict.items()
    }


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.processors.StackInfoRenderer(),
        # The traceback becomes text before redaction, so a secret in an exception's message is masked too.
        structlog.processors.format_exc_info,
        redact_secrets,
    ]


def _renderer(log_format: str) -> Processor:
    if log_format == "json":
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)


def formatter(log_format: str = "console") -> logging.Formatter:
    """LOGGING's formatter factory (``"()"``): renders stdlib records and structlog events alike, and configures
    structlog to hand its events to it, so both kinds of logger share one pipeline."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"NEENA_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}.")
    shared = _shared_processors()
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _renderer(log_format)],
    )


class ClientErrorFilter(logging.Filter):
    """Logs a client's mistake as a warning without a traceback.

    Django logs a request with a Host header outside ALLOWED_HOSTS (``django.security.DisallowedHost``) as an error
    with the exception's traceback, as if the server had crashed; it answers 400 and it is the client's input.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno = logging.WARNING
        record.levelname = logging.getLevelName(logging.WARNING)
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


class RoutineBeatFilter(logging.Filter):
    """Demotes beat's "Scheduler: Sending due task" line, written for every periodic job, to DEBUG; beat's start-up
    and its errors stay as they are. NeenaTask logs each job once where it runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Scheduler: Sending due task"):
            record.levelno = logging.DEBUG
            record.levelname = logging.getLevelName(logging.DEBUG)
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """Django's LOGGING: one console handler on the root logger with the structured formatter."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": "apps.core.structured_logs.formatter", "log_format": log_format}},
        "filters": {
            "client_error": {"()": "apps.core.structured_logs.ClientErrorFilter"},
            "routine_beat": {"()": "apps.core.structured_logs.RoutineBeatFilter"},
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            "django.security.DisallowedHost": {"filters": ["client_error"]},
            # HTTP clients log every URL at INFO; some APIs (Trello) carry credentials in the query string.
            "httpx": {"level": "WARNING"},
            "httpx2": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
            # Celery's "received" and "succeeded" lines, and beat's "sending due task", repeat what NeenaTask logs
            # once per job (with its duration and request id); failures are still logged, at ERROR.
            "celery.worker.strategy": {"level": "WARNING"},
            "celery.app.trace": {"level": "WARNING"},
            "celery.beat": {"filters": ["routine_beat"]},
            # django-axes announces its configuration at every start; its lockout warnings are kept.
            "axes.apps": {"level": "WARNING"},
        },
    }
