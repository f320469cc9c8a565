"""A fake OAuth2 provider on 127.0.0.1: a token endpoint for the code (with PKCE) and refresh grants (refresh
tokens rotate: each is good once), and a revocation endpoint; it checks what a real provider checks and records every
request."""

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class ProviderState:
    client_id: str = "neena-client"
    client_secret: str = "neena-secret"
    codes: dict[str, str] = field(default_factory=dict)  # code -> PKCE challenge
    refresh_tokens: set[str] = field(default_factory=set)
    revoked: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    expires_in: int = 3600
    issued: int = 0
    # Like most providers: a refresh token is spent by its use (the answer carries the next one).
    rotate_refresh_tokens: bool = True
    # Seconds the token endpoint takes to answer, as a slow provider would.
    token_delay_seconds: float = 0.0


class FakeOAuthProvider:
    def __init__(self) -> None:
        self.state = ProviderState()
        provider = self.state

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {key: values[0] for key, values in parse_qs(self.rfile.read(length).decode()).items()}
                provider.requests.append({"path": self.path, "form": form, "headers": dict(self.headers)})
                if self.path == "/revoke":
                    provider.revoked.append(form.get("token", ""))
                    self._send(200, {})
                    return
                if form.get("client_id") != provider.client_id or form.get("client_secret") != provider.client_secret:
                    self._send(401, {"error": "invalid_client"})
                    return
                if form.get("grant_type") == "authorization_code":
                    challenge = provider.codes.pop(form.get("code", ""), None)
                    verifier = form.get("code_verifier", "")
                    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
                    if challenge is None or challenge != expected:
                        self._send(400, {"error": "invalid_grant", "error_description": "Bad code or verifier."})
                        return
                elif form.get("grant_type") == "refresh_token":
                    time.sleep(provider.token_delay_seconds)
                    if form.get("refresh_token") not in provider.refresh_tokens:
                        self._send(400, {"error": "invalid_grant", "error_description": "Token has been revoked."})
                        return
                    if provider.rotate_refresh_tokens:
                        provider.refresh_tokens.discard(form.get("refresh_token", ""))
                else:
                    self._send(400, {"error": "unsupported_grant_type"})
                    return
                provider.issued += 1
                refresh = f"refresh-{provider.issued}"
                provider.refresh_tokens.add(refresh)
                self._send(
                    200,
                    {
                        "access_token": f"access-{provider.issued}",
                        "refresh_token": refresh,
                        "expires_in": provider.expires_in,
                        "token_type": "Bearer",
                        "scope": "chat:write",
                    },
                )

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def grant_code(self, code: str, challenge: str) -> None:
        """What the provider does when the user approves: a code bound to the PKCE challenge it was sent."""
        self.state.codes[code] = challenge

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
