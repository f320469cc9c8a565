"""A fake OpenAI-compatible chat-completions server on 127.0.0.1, speaking the real protocol.

Tests queue what it answers next (a completion, an HTTP error with headers, a slow answer) and read back the requests
it received, checking the method, path, bearer key and JSON body the real API expects.
"""

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    content: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeOpenAI:
    """``base_url`` goes into NEENA_LLM_BASE_URL; ``answer(...)`` queues answers; ``requests`` holds what came in."""

    def __init__(self) -> None:
        self.answers: deque[Answer] = deque()
        self.requests: list[ReceivedRequest] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(ReceivedRequest("POST", self.path, dict(self.headers), body))
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": "Unknown path", "type": "invalid_request_error"}})
                    return
                answer = fake.answers.popleft() if fake.answers else Answer(status=500, content="no answer queued")
                time.sleep(answer.delay)
                if answer.status != 200:
                    error = {"error": {"message": answer.content or "error", "type": "server_error", "code": None}}
                    self._send(answer.status, error, answer.headers)
                    return
                self._send(
                    200,
                    {
                        "id": f"chatcmpl-{len(fake.requests)}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", "fake"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": answer.content},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    },
                )

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def answer(self, content: Any = "", **kwargs: Any) -> None:
        text = content if isinstance(content, str) else json.dumps(content)
        self.answers.append(Answer(content=text, **kwargs))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
