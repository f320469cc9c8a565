"""Logging filters named in settings.LOGGING."""

import logging


class ClientErrorAsWarning(logging.Filter):
    """Logs a record as a WARNING without its traceback: for errors that are the client's, not a crash.

    Django logs a ``Host`` header not in ALLOWED_HOSTS (``django.security.DisallowedHost``) at ERROR with the
    traceback, as if the server had failed; any scanner on the internet sends such requests. The message still
    names the host.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.WARNING:
            record.levelno = logging.WARNING
            record.levelname = logging.getLevelName(logging.WARNING)
        record.exc_info = None
        record.exc_text = None
        return True
