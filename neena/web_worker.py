"""gunicorn's ``asgi`` worker, answering its own errors in the API's JSON shape.

gunicorn answers some requests itself, before Django sees them: a request line past ``limit_request_line`` (414),
a header past ``limit_request_field_size`` or too many headers (431), a request it cannot parse (400), an unknown
transfer coding (501). It writes those as ``text/plain``. API clients get every other error as
``{"detail": ..., "code": ...}`` (docs/api-errors.md), so this worker writes these the same way, whatever the path:
at that point the request line may not even have been read.

gunicorn.conf.py names ``neena.web_worker.JSONErrorASGIWorker`` as the ``worker_class``. It relies on two private
parts of gunicorn 27 (pinned in requirements.txt): ``ASGIProtocol._send_error_response`` and the way
``ASGIWorker._serve`` builds each connection's protocol. tests/core/test_web_worker.py starts the real server and
fails if an upgrade changes either.
"""

from http import HTTPStatus

import orjson
from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers import gasgi

from apps.core.http_errors import status_code_name


class JSONErrorASGIProtocol(ASGIProtocol):
    """gunicorn's HTTP protocol with its error answers written as JSON."""

    def _send_error_response(self, status: int, message: str, extra_headers: tuple[tuple[str, str], ...] = ()) -> None:
        # As gunicorn's own: the fixed reason phrase in the status line, the message (which may quote the request)
        # only in the body, and the connection closed after it.
        body = orjson.dumps({"detail": message, "code": status_code_name(status)})
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Error"
        extra = "".join(f"{name}: {value}\r\n" for name, value in extra_headers)
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"{extra}"
            "Connection: close\r\n"
            "\r\n"
        )
        self._safe_write(head.encode("latin-1"))
        self._safe_write(body)


class JSONErrorASGIWorker(gasgi.ASGIWorker):
    """gunicorn's ``asgi`` worker, serving connections with ``JSONErrorASGIProtocol``."""

    def init_process(self) -> None:
        # ASGIWorker._serve creates each connection's protocol as ``ASGIProtocol(self)``, looking the name up in its
        # module when the listeners start; gunicorn has no setting for the class. This runs in the worker's own
        # process, which serves nothing else, after the fork and before the listeners start.
        gasgi.ASGIProtocol = JSONErrorASGIProtocol
        super().init_process()
