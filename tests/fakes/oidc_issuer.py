"""A local OIDC issuer on 127.0.0.1: its discovery document, its JWKS, and tokens signed with its own keys.

Keys are generated once per test session (``SigningKeys``: RSA and EC P-256 pairs, generating RSA keys is slow);
each test's issuer publishes the ones it chooses and can rotate them (``publish``, ``withdraw``). ``token(...)``
signs a JWT with any of the session's keys, published or not, with the claims a real issuer would send unless the
test overrides them. The issuer records every path it is asked for, and can be told to fail (``status``).
"""

import json
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.fakes.server import serve

AUDIENCE = "https://api.neena.test"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private_key: Any

    def public_jwk(self) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.algorithm == "RS256" else ECAlgorithm
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private_key.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.algorithm}


class SigningKeys:
    """The session's key pairs by kid: ``rsa-1``, ``rsa-2``, ``ec-1``, ``ec-2``."""

    def __init__(self) -> None:
        self.keys = {
            "rsa-1": SigningKey("rsa-1", "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "rsa-2": SigningKey("rsa-2", "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "ec-1": SigningKey("ec-1", "ES256", ec.generate_private_key(ec.SECP256R1())),
            "ec-2": SigningKey("ec-2", "ES256", ec.generate_private_key(ec.SECP256R1())),
        }

    def __getitem__(self, kid: str) -> SigningKey:
        return self.keys[kid]


@dataclass
class IssuerState:
    published: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    # Answer this status (and no document) to every request when set.
    status: int | None = None
    # The discovery document's "issuer", when it should differ from the issuer's URL.
    discovery_issuer: str | None = None
    # Entries the JWKS lists after the published keys, as they are (unusable keys, junk).
    extra_jwks_entries: list[Any] = field(default_factory=list)


class FakeOIDCIssuer:
    """``url`` is the issuer (with a final slash, as Auth0 writes it); ``jwks_url`` its keys."""

    def __init__(self, keys: SigningKeys) -> None:
        self.keys = keys
        self.state = IssuerState()
        self.server = serve(self._handle)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.base_url}/"
        self.jwks_url = f"{self.base_url}/.well-known/jwks.json"

    def reset(self, *, published: tuple[str, ...] = ("rsa-1", "ec-1")) -> None:
        self.state = IssuerState(published=list(published))

    def publish(self, kid: str) -> None:
        self.state.published.append(kid)

    def withdraw(self, kid: str) -> None:
        self.state.published.remove(kid)

    def jwks_requests(self) -> int:
        return self.state.paths.count("/.well-known/jwks.json")

    def token(
        self,
        *,
        kid: str = "rsa-1",
        algorithm: str | None = None,
        signing_key: Any = None,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A JWT signed with the session key ``kid`` (or ``signing_key``), claims defaulting to a valid token for
        ``ann@example.com``; a claim given as None is left out."""
        key = self.keys[kid]
        now = int(time.time())
        payload = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "auth0|ann",
            "iat": now,
            "exp": now + 300,
            "email": "ann@example.com",
            "name": "Ann Example",
            "scope": "openid read write approve",
            **claims,
        }
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(
            payload,
            signing_key if signing_key is not None else key.private_key,
            algorithm=algorithm or key.algorithm,
            headers={"kid": kid, **(header or {})},
        )

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        state = self.state
        state.paths.append(request.path)
        if state.status is not None:
            self._send(request, state.status, {"error": "unavailable"})
        elif request.path == "/.well-known/openid-configuration":
            document = {"issuer": state.discovery_issuer or self.url, "jwks_uri": self.jwks_url}
            self._send(request, 200, document)
        elif request.path == "/.well-known/jwks.json":
            keys = [self.keys[kid].public_jwk() for kid in state.published]
            self._send(request, 200, {"keys": keys + state.extra_jwks_entries})
        else:
            self._send(request, 404, {"error": "not_found"})

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
