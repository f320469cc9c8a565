"""A fake Perplexity API on 127.0.0.1: ``POST /chat/completions`` answering in Perplexity's shape (with sources).

Tests queue what it answers next (an answer with citations and/or search results, or an HTTP error with headers) and
read back the requests it received: method, path, headers and JSON body.
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
    citations: list[str] | None = None
    search_results: list[dict[str, Any]] | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as is, instead of a completion


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers.items() if key.lower() == name.lower()), None)


class FakePerplexity:
    """``base_url`` goes into NEENA_PERPLEXITY_BASE_URL; ``answer(...)`` queues answers; ``requests`` holds what came
    in."""

    def __init__(self) -> None:
        self.answers: deque[Answer] = deque()
        self.requests: list[ReceivedRequest] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(ReceivedRequest("POST", self.path, dict(self.headers), body))
                if self.path != "/chat/completions":
                    self._send(404, json.dumps({"error": {"message": "Not found"}}).encode())
                    return
                answer = fake.answers.popleft() if fake.answers else Answer(status=500, content="no answer queued")
                if answer.raw is not None:
                    self._send(answer.status, answer.raw, answer.headers)
                elif answer.status != 200:
                    error = {"error": {"message": answer.content or "error", "type": "error", "code": answer.status}}
                    self._send(answer.status, json.dumps(error).encode(), answer.headers)
                else:
                    completion: dict[str, Any] = {
                        "id": f"pplx-{len(fake.requests)}",
                        "model": body.get("model", "sonar"),
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": answer.content},
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                    if answer.citations is not None:
                        completion["citations"] = answer.citations
                    if answer.search_results is not None:
                        completion["search_results"] = answer.search_results
                    self._send(200, json.dumps(completion).encode(), answer.headers)

            def _send(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
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
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, content: str = "", **kwargs: Any) -> None:
        self.answers.append(Answer(content=content, **kwargs))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
