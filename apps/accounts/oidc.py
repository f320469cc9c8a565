"""JWT bearer tokens from an external OIDC issuer (Auth0 or any): the issuer's keys, and checking a token against them.

``token_verify`` goes through these steps, refusing (``TokenRefusedError``, a 401) at the first that fails:

1. The header. ``alg`` must be RS256 or ES256: ``none``, HS256 (a token "signed" with the issuer's public key used
   as an HMAC secret) and every other algorithm are refused before any key is looked at. ``kid`` must name a key.
2. The key. The issuer's JWKS (``NEENA_OIDC_JWKS_URL``, else the ``jwks_uri`` of its discovery document at
   ``<issuer>/.well-known/openid-configuration``, whose ``issuer`` must be NEENA_OIDC_ISSUER exactly and whose
   ``jwks_uri`` must be https when the issuer is) is kept in this
   process and in Django's cache (Redis, shared by every process) for ``NEENA_OIDC_JWKS_CACHE_SECONDS``, so a request
   costs no call to the issuer. A ``kid`` not among the keys (the issuer rotated them) has them read again at once:
   first from Django's cache, where another process may have put the new ones, then from the issuer, at most once
   per ``NEENA_OIDC_JWKS_REFETCH_SECONDS`` window in the deployment (tokens with made-up key ids cannot make Neena
   hammer the issuer). Each reading replaces the keys: one the issuer no longer lists is refused from then on. Every
   key is bound to one algorithm (its ``alg``, else RS256 for RSA and ES256 for P-256 keys; keys for other
   algorithms, or for encryption, are ignored), and a token whose ``alg`` is not its key's is refused.
3. The claims: the signature, ``iss`` equal to NEENA_OIDC_ISSUER, ``aud`` naming NEENA_OIDC_AUDIENCE, ``exp``,
   ``nbf`` and ``iat`` with NEENA_OIDC_LEEWAY_SECONDS of leeway; ``exp``, ``iss``, ``aud`` and a non-empty ``sub``
   are required.

Reading the issuer is a network call: it goes through the egress guard (trusted: the operator chose the issuer) with
NEENA_OIDC_TIMEOUT_SECONDS, from authentication, before the request opens any transaction. When the issuer cannot be
read and no current keys are at hand, ``IssuerUnavailableError`` (a 503): the token may well be good.
"""

import hashlib
import logging
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from redis.exceptions import RedisError

from apps.accounts.exceptions import IssuerUnavailableError, TokenRefusedError
from apps.integrations import egress

logger = logging.getLogger(__name__)

ACCEPTED_ALGORITHMS = ("RS256", "ES256")
DISCOVERY_PATH = "/.well-known/openid-configuration"
# Three base64url segments (the third, the signature, empty for alg "none"). Neena's own tokens have no dots.
JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# What a token's claims must hold before Neena reads them; PyJWT refuses the token when one is missing.
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
# User.email's length; longer is not an address Neena can store.
EMAIL_MAX_LENGTH = 254
# User.full_name's and User.auth0_id's lengths.
FULL_NAME_MAX_LENGTH = 255
SUBJECT_MAX_LENGTH = 255


def oidc_enabled() -> bool:
    return bool(settings.NEENA_OIDC_ISSUER)


def looks_like_jwt(token: str) -> bool:
    return JWT_SHAPE.fullmatch(token) is not None


@dataclass(frozen=True)
class OIDCToken:
    """``request.auth`` for a verified JWT: its claims and the API scopes they grant, offering what the scope check
    reads on the toolkit's access tokens (``scope``, ``allow_scopes``)."""

    claims: dict[str, Any]
    scope: str

    def allow_scopes(self, scopes: Iterable[str]) -> bool:
        return set(scopes) <= set(self.scope.split())


@dataclass(frozen=True)
class OIDCIdentity:
    """Who a verified token says the caller is: the issuer's subject, and the email and name it vouches for."""

    subject: str
    email: str
    full_name: str


@dataclass(frozen=True)
class _KeySet:
    keys: dict[str, jwt.PyJWK]
    fetched_at: float

    def fresh(self) -> bool:
        return _current(self.fetched_at)


_lock = threading.Lock()
# By JWKS URL: the keys last read, and when this process last read (or tried to read) them.
_key_sets: dict[str, _KeySet] = {}
_last_fetch: dict[str, float] = {}
# By issuer: the discovered jwks_uri and when it was read.
_discovered: dict[str, tuple[str, float]] = {}


def _now() -> float:
    """Wall-clock seconds: the times kept in Django's cache are compared across processes and hosts."""
    return time.time()


def _current(fetched_at: float) -> bool:
    """Whether something read from the issuer at ``fetched_at`` is still to be used without reading it again."""
    return _now() - fetched_at < settings.NEENA_OIDC_JWKS_CACHE_SECONDS


def key_cache_clear() -> None:
    """Forgets what this process knows of the issuer (keys, discovery, fetch times); Django's cache is left alone."""
    with _lock:
        _key_sets.clear()
        _last_fetch.clear()
        _discovered.clear()


def _cache_key(kind: str, url: str) -> str:
    return f"oidc-{kind}:{hashlib.sha256(url.encode()).hexdigest()}"


def _cache_get(key: str) -> Any:
    """Django's cache, or nothing when it does not answer (each process then reads the issuer on its own)."""
    try:
        return cache.get(key)
    except (RedisError, OSError) as error:
        logger.warning("OIDC keys not read from the cache, it is unavailable: %s", error)
        return None


def _cache_set(key: str, value: Any) -> None:
    try:
        cache.set(key, value, timeout=settings.NEENA_OIDC_JWKS_CACHE_SECONDS)
    except (RedisError, OSError) as error:
        logger.warning("OIDC keys not written to the cache, it is unavailable: %s", error)


def _fetch_json(url: str) -> dict[str, Any]:
    """GETs a JSON object from the issuer, through the egress guard; any failure is IssuerUnavailableError."""
    try:
        response = egress.request(
            "GET",
            url,
            trusted=True,
            timeout=settings.NEENA_OIDC_TIMEOUT_SECONDS,
            headers={"Accept": "application/json"},
        )
    except (httpx.HTTPError, egress.EgressRefusedError) as error:
        logger.warning("OIDC issuer unreachable at %s: %s", url, error)
        raise IssuerUnavailableError(url) from error
    if response.status_code != 200:
        logger.warning("OIDC issuer answered %s at %s", response.status_code, url)
        raise IssuerUnavailableError(url)
    try:
        document = response.json()
    except ValueError as error:
        logger.warning("OIDC issuer answered something other than JSON at %s", url)
        raise IssuerUnavailableError(url) from error
    if not isinstance(document, dict):
        logger.warning("OIDC issuer answered JSON that is not an object at %s", url)
        raise IssuerUnavailableError(url)
    return document


def jwks_url() -> str:
    """NEENA_OIDC_JWKS_URL, else the ``jwks_uri`` of the issuer's discovery document, kept like the keys and read
    again under the same limit; while it cannot be read again, the last one read goes on being used (an issuer
    moves its keys between documents, not its documents)."""
    if settings.NEENA_OIDC_JWKS_URL:
        return str(settings.NEENA_OIDC_JWKS_URL)
    issuer = str(settings.NEENA_OIDC_ISSUER)
    with _lock:
        known = _discovered.get(issuer)
    if known is None or not _current(known[1]):
        shared = _cache_get(_cache_key("discovery", issuer))
        if shared is not None and (known is None or shared[1] > known[1]):
            known = shared
    if known is None or not _current(known[1]):
        discovery_url = issuer.rstrip("/") + DISCOVERY_PATH
        if _fetch_allowed(discovery_url):
            try:
                known = (_discovered_jwks_uri(issuer, _fetch_json(discovery_url)), _now())
            except IssuerUnavailableError:
                if known is None:
                    raise
            else:
                _cache_set(_cache_key("discovery", issuer), known)
        elif known is None:
            raise IssuerUnavailableError(discovery_url)
    with _lock:
        _discovered[issuer] = known
    return known[0]


def _discovered_jwks_uri(issuer: str, document: dict[str, Any]) -> str:
    """The discovery document's ``jwks_uri``, refused unless the document names the issuer exactly and the keys are
    read over https whenever the issuer is (an https issuer's keys over http could be swapped on the way, which the
    production check on NEENA_OIDC_ISSUER and NEENA_OIDC_JWKS_URL means to rule out); http only for an http issuer
    (development)."""
    uri = document.get("jwks_uri")
    schemes = ("https://",) if issuer.startswith("https://") else ("https://", "http://")
    if document.get("issuer") != issuer or not isinstance(uri, str) or not uri.startswith(schemes):
        logger.error(
            "The OIDC discovery document of %s names the issuer %r (NEENA_OIDC_ISSUER must be exactly that) and the "
            "jwks_uri %r",
            issuer,
            document.get("issuer"),
            uri,
        )
        raise IssuerUnavailableError(issuer)
    return uri


def _key_algorithm(entry: dict[str, Any]) -> str | None:
    declared = entry.get("alg")
    if declared is not None:
        return declared if isinstance(declared, str) else None
    if entry.get("kty") == "RSA":
        return "RS256"
    if entry.get("kty") == "EC" and entry.get("crv") == "P-256":
        return "ES256"
    return None


def _parse_keys(document: dict[str, Any]) -> dict[str, jwt.PyJWK]:
    """The JWKS's signing keys for an accepted algorithm, by ``kid``, each bound to its algorithm; others skipped."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        logger.warning("The OIDC issuer's JWKS has no keys list")
        raise IssuerUnavailableError("jwks")
    keys = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        kid, algorithm = entry.get("kid"), _key_algorithm(entry)
        if not isinstance(kid, str) or not kid or entry.get("use", "sig") != "sig":
            continue
        if algorithm not in ACCEPTED_ALGORITHMS:
            continue
        try:
            keys[kid] = jwt.PyJWK(entry, algorithm=algorithm)
        except jwt.PyJWTError as error:
            logger.warning("OIDC key %r skipped, it is not a usable %s key: %s", kid, algorithm, error)
    if not keys:
        logger.warning("The OIDC issuer's JWKS holds no RS256 or ES256 signing key with a kid")
    return keys


def _remembered_key_set(url: str) -> _KeySet | None:
    """The newest current keys this process or Django's cache holds; None when neither holds current ones."""
    with _lock:
        local = _key_sets.get(url)
    shared = _cache_get(_cache_key("jwks", url))
    if shared is not None and (local is None or shared["fetched_at"] > local.fetched_at):
        local = _KeySet(keys=_parse_keys(shared["document"]), fetched_at=shared["fetched_at"])
        with _lock:
            _key_sets[url] = local
    return local if local is not None and local.fresh() else None


def _fetch_allowed(url: str) -> bool:
    """At most one read of ``url`` (the JWKS, the discovery document) per NEENA_OIDC_JWKS_REFETCH_SECONDS window:
    in this process by its own clock, in the deployment by a key of the window in Django's cache, which ``add`` gives
    to one process only."""
    interval = settings.NEENA_OIDC_JWKS_REFETCH_SECONDS
    now = _now()
    with _lock:
        if now - _last_fetch.get(url, float("-inf")) < interval:
            return False
        _last_fetch[url] = now
    window_key = f"{_cache_key('jwks-fetch', url)}:{int(now // interval)}"
    try:
        return bool(cache.add(window_key, 1, timeout=interval * 2))
    except (RedisError, OSError) as error:
        logger.warning("OIDC key reads limited per process only, the cache is unavailable: %s", error)
        return True


def _fetch_key_set(url: str) -> _KeySet:
    document = _fetch_json(url)
    key_set = _KeySet(keys=_parse_keys(document), fetched_at=_now())
    _cache_set(_cache_key("jwks", url), {"document": document, "fetched_at": key_set.fetched_at})
    with _lock:
        _key_sets[url] = key_set
    return key_set


def signing_key(kid: str) -> jwt.PyJWK:
    """The issuer's current key named ``kid``; a kid not among the current keys has them read again (see the module
    docstring), and one still not among them is refused."""
    url = jwks_url()
    with _lock:
        key_set = _key_sets.get(url)
    if key_set is None or not key_set.fresh() or kid not in key_set.keys:
        key_set = _remembered_key_set(url)
    if key_set is None or kid not in key_set.keys:
        if _fetch_allowed(url):
            key_set = _fetch_key_set(url)
        elif key_set is None:
            # Another reading in this window failed, or is under way: no current keys to judge the token by.
            raise IssuerUnavailableError(url)
    if kid not in key_set.keys:
        raise TokenRefusedError("The token is signed with a key the issuer does not publish.")
    return key_set.keys[kid]


def token_verify(token: str) -> dict[str, Any]:
    """The claims of a JWT the issuer signed for this API, still valid; TokenRefusedError saying why otherwise."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise TokenRefusedError("The token is not a well-formed JWT.") from error
    algorithm = header.get("alg")
    if algorithm not in ACCEPTED_ALGORITHMS:
        raise TokenRefusedError("The token's signing algorithm is not accepted: only RS256 and ES256 are.")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRefusedError("The token's header names no signing key (kid).")
    key = signing_key(kid)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=settings.NEENA_OIDC_AUDIENCE,
            issuer=settings.NEENA_OIDC_ISSUER,
            leeway=settings.NEENA_OIDC_LEEWAY_SECONDS,
            # RSA keys shorter than 2048 bits are refused too.
            options={"require": REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
        )
    except jwt.InvalidSignatureError as error:
        raise TokenRefusedError("The token's signature does not verify.") from error
    except jwt.ExpiredSignatureError as error:
        raise TokenRefusedError("The token has expired.") from error
    except jwt.ImmatureSignatureError as error:
        raise TokenRefusedError("The token is not valid yet (nbf or iat is in the future).") from error
    except jwt.InvalidAudienceError as error:
        raise TokenRefusedError("The token is not meant for this API (aud).") from error
    except jwt.InvalidIssuerError as error:
        raise TokenRefusedError("The token comes from another issuer (iss).") from error
    except jwt.MissingRequiredClaimError as error:
        raise TokenRefusedError(f"The token lacks the '{error.claim}' claim.") from error
    except jwt.InvalidAlgorithmError as error:
        raise TokenRefusedError("The token's algorithm is not its signing key's.") from error
    except jwt.PyJWTError as error:
        raise TokenRefusedError("The token is not a valid JWT.") from error
    if not claims["sub"] or len(claims["sub"]) > SUBJECT_MAX_LENGTH:
        raise TokenRefusedError(f"The token's 'sub' claim must be 1 to {SUBJECT_MAX_LENGTH} characters.")
    return claims


def token_scope(claims: dict[str, Any]) -> str:
    """The API scopes (read, write, approve) the token grants, space-separated: its ``permissions`` when it has that
    claim (Auth0 RBAC), else its ``scope``. Other names (``openid``, ``profile``, ...) grant nothing."""
    if "permissions" in claims:
        permissions = claims["permissions"]
        granted = {name for name in permissions if isinstance(name, str)} if isinstance(permissions, list) else set()
    else:
        scope = claims.get("scope")
        granted = set(scope.split()) if isinstance(scope, str) else set()
    return " ".join(name for name in settings.API_SCOPES if name in granted)


def token_identity(claims: dict[str, Any]) -> OIDCIdentity:
    """The subject, and the email from NEENA_OIDC_EMAIL_CLAIM (required: users are found and provisioned by it; one
    the issuer marks unverified is refused), and the ``name`` claim."""
    claim = settings.NEENA_OIDC_EMAIL_CLAIM
    email = claims.get(claim)
    if not isinstance(email, str) or not email.strip():
        raise TokenRefusedError(f"The token carries no email (the '{claim}' claim), which Neena finds its user by.")
    email = email.strip()
    try:
        if len(email) > EMAIL_MAX_LENGTH:
            raise ValidationError("too long")
        validate_email(email)
    except ValidationError as error:
        raise TokenRefusedError(f"The token's '{claim}' claim is not an email address.") from error
    verified = claims.get("email_verified")
    # Some issuers send the flag as a string; "false" is as unverified as false.
    if verified is False or (isinstance(verified, str) and verified.strip().lower() == "false"):
        raise TokenRefusedError("The issuer has not verified the token's email (email_verified is false).")
    name = claims.get("name")
    full_name = name.strip()[:FULL_NAME_MAX_LENGTH] if isinstance(name, str) else ""
    return OIDCIdentity(subject=str(claims["sub"]), email=email, full_name=full_name)
