"""Connecting an integration through OAuth2: the authorize URL (self-contained, expiring, single-use state and
PKCE), the code exchange, refreshing tokens before they expire, and revoking them when a credential is deleted.

Every call to the provider (exchange, refresh, revoke) happens outside any database transaction and row lock: a
provider that takes seconds to answer must not hold the database's write lock (on SQLite, the whole database's)
meanwhile. What needs to be atomic around a call is claimed before it in a short write of its own (the state's
nonce, the refresh claim) and saved after it in another.
"""

import base64
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.selectors import organization_for_write
from apps.core.exceptions import InputValidationError
from apps.credentials.encryption import DecryptionError, decrypt_json, encrypt_json
from apps.credentials.models import IntegrationCredential, SpentOAuth2State
from apps.credentials.services.auditing import credential_audit_record, credential_metadata
from apps.integrations import egress
from apps.integrations.models import Integration
from apps.integrations.selectors import integration_get_by_short_name

logger = logging.getLogger(__name__)

# Written into every state, so no other ciphertext of the same keys can pass for one.
STATE_PURPOSE = "neena.oauth2.state"
# Spent states' nonces are kept this long past their state's expiry before they are swept: the web hosts' clocks
# may differ a little, and a nonce must outlive every host's idea of when its state expires.
SPENT_STATE_RETENTION = timedelta(hours=1)
# The token endpoint's timeout, and how long a refresh claim lasts: longer than one token request can take, so a
# claim only lapses when its worker died; then another worker may claim the refresh.
TOKEN_REQUEST_TIMEOUT_SECONDS = 30
REFRESH_CLAIM = timedelta(seconds=TOKEN_REQUEST_TIMEOUT_SECONDS + 15)
# How often a worker waiting for another one's refresh looks again.
REFRESH_WAIT_POLL_SECONDS = 0.2


class OAuth2Error(Exception):
    """The provider refused or could not be reached."""


@dataclass(frozen=True)
class OAuth2Client:
    """An integration's OAuth2 registration: client id and secret from settings, URLs from settings or the
    connector's declaration."""

    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    revoke_url: str
    scopes: tuple[str, ...]


def oauth2_client(integration: Integration) -> OAuth2Client | None:
    if integration.auth_type != Integration.AuthType.OAUTH2:
        return None
    registered = settings.NEENA_OAUTH2_CLIENTS.get(integration.short_name, {})
    declared = integration.oauth2_config
    return OAuth2Client(
        client_id=registered.get("client_id", ""),
        client_secret=registered.get("client_secret", ""),
        authorize_url=registered.get("authorize_url") or declared.get("authorize_url", ""),
        token_url=registered.get("token_url") or declared.get("token_url", ""),
        revoke_url=registered.get("revoke_url") or declared.get("revoke_url", ""),
        scopes=tuple(declared.get("scopes", ())),
    )


def _oauth2_integration(short_name: str) -> tuple[Integration, OAuth2Client]:
    loc = ["query", "integration_short_name"]
    integration = integration_get_by_short_name(short_name=short_name)
    if integration is None:
        raise InputValidationError.single(loc, "Integration not found.", "not_found")
    client = oauth2_client(integration)
    if client is None:
        raise InputValidationError.single(loc, f"{integration.name} does not connect through OAuth2.", "not_oauth2")
    if not client.client_id:
        name = f"NEENA_{short_name.upper()}_CLIENT_ID"
        raise InputValidationError.single(loc, f"{integration.name} has no OAuth2 client: set {name}.", "no_client")
    return integration, client


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def oauth2_authorize_url(*, user: User, integration_short_name: str, organization: UUID | None = None) -> str:
    """The provider's authorize URL: client id, redirect URI, scopes, a state and a PKCE S256 challenge.

    Writes nothing (a GET must not): the state is self-contained, a Fernet token (AES and HMAC with the credential
    key, NEENA_ENCRYPTION_KEYS) holding a random nonce, the user, the target organization, the integration, the PKCE
    verifier and the expiry. Only Neena can read or forge it, so the verifier stays secret although it travels
    through the browser and the provider; the nonce makes it single-use (``oauth2_code_exchange``).
    """
    integration, client = _oauth2_integration(integration_short_name)
    target = organization_for_write(user=user, organization_id=organization)
    verifier = secrets.token_urlsafe(64)
    issued_at = int(time.time())
    state = encrypt_json(
        {
            "purpose": STATE_PURPOSE,
            "nonce": secrets.token_urlsafe(24),
            "user": str(user.id),
            "organization": str(target.id),
            "integration": integration.short_name,
            "code_verifier": verifier,
            "issued_at": issued_at,
            "expires_at": issued_at + settings.NEENA_OAUTH2_STATE_TTL_SECONDS,
        }
    )
    query = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": settings.NEENA_OAUTH2_REDIRECT_URI,
        "scope": " ".join(client.scopes),
        "state": state,
        "code_challenge": _challenge(verifier),
        "code_challenge_method": "S256",
    }
    separator = "&" if "?" in client.authorize_url else "?"
    return f"{client.authorize_url}{separator}{urlencode(query)}"


def _state_open(*, state: str, user: User, integration_short_name: str) -> dict[str, Any]:
    """The state's contents, once it is known to be Neena's, unexpired, the caller's and for this integration.

    It expires at the earlier of the expiry written in it and its issue time plus the current
    NEENA_OAUTH2_STATE_TTL_SECONDS: lowering the setting shortens states already issued, raising it never lengthens
    them past the expiry their spent nonce is kept for.
    """
    loc = ["body", "state"]
    try:
        claims = decrypt_json(state)
    except DecryptionError:
        raise InputValidationError.single(loc, "The state is not one Neena issued.", "state_invalid") from None
    if claims.get("purpose") != STATE_PURPOSE:
        raise InputValidationError.single(loc, "The state is not one Neena issued.", "state_invalid")
    expires_at = min(int(claims["expires_at"]), int(claims["issued_at"]) + settings.NEENA_OAUTH2_STATE_TTL_SECONDS)
    if time.time() > expires_at:
        raise InputValidationError.single(loc, "The state has expired; start again.", "state_expired")
    if claims.get("user") != str(user.id) or claims.get("integration") != integration_short_name:
        raise InputValidationError.single(loc, "The state was used already or belongs to someone else.", "state_used")
    return claims


def _state_spend(claims: dict[str, Any]) -> None:
    """Records the state's nonce as spent, in a transaction of its own that commits before the provider is called:
    a second attempt with the same state fails here, whatever became of the first. Also sweeps the nonces of states
    expired long enough ago (an indexed range delete on a table as small as the number of recent connections)."""
    now = timezone.now()
    try:
        with transaction.atomic():
            SpentOAuth2State.objects.filter(expires_at__lt=now - SPENT_STATE_RETENTION).delete()
            SpentOAuth2State.objects.create(
                nonce=str(claims["nonce"]), expires_at=datetime.fromtimestamp(int(claims["expires_at"]), tz=UTC)
            )
    except IntegrityError:
        raise InputValidationError.single(
            ["body", "state"], "The state was used already or belongs to someone else.", "state_used"
        ) from None


def _token_request(client: OAuth2Client, data: dict[str, str], service: str) -> dict[str, Any]:
    try:
        response = egress.request(
            "POST",
            client.token_url,
            trusted=True,
            data={**data, "client_id": client.client_id, "client_secret": client.client_secret},
            headers={"Accept": "application/json"},
            timeout=TOKEN_REQUEST_TIMEOUT_SECONDS,
        )
    except (httpx.HTTPError, egress.EgressRefusedError) as error:
        raise OAuth2Error(f"{service}'s token endpoint could not be reached: {error}") from error
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code >= 400 or not isinstance(body, dict) or "access_token" not in body:
        reason = body.get("error_description") or body.get("error") if isinstance(body, dict) else None
        raise OAuth2Error(
            f"{service} refused the token request ({response.status_code}): {reason or response.text[:200]}"
        )
    return body


def _store_tokens(credential: IntegrationCredential, tokens: dict[str, Any], previous: dict[str, Any]) -> None:
    secrets_ = {"access_token": tokens["access_token"]}
    refresh_token = tokens.get("refresh_token") or previous.get("refresh_token")
    if refresh_token:
        secrets_["refresh_token"] = refresh_token
    credential.secret_ciphertext = encrypt_json(secrets_)
    credential.secret_fields = sorted(secrets_)
    credential.config = {
        **credential.config,
        **{key: tokens[key] for key in ("scope", "token_type") if isinstance(tokens.get(key), str)},
    }
    expires_in = tokens.get("expires_in")
    credential.expires_at = timezone.now() + timedelta(seconds=int(expires_in)) if expires_in else None
    credential.status = IntegrationCredential.Status.ACTIVE
    credential.status_reason = ""


def oauth2_code_exchange(*, user: User, integration_short_name: str, code: str, state: str) -> IntegrationCredential:
    """Exchanges the provider's code for tokens and stores them encrypted as the caller's credential.

    Steps: open the state (Neena's, unexpired, the caller's, this integration; nothing is written for a state that
    fails these, so another user cannot burn yours); check the caller may still write to the organization it names;
    spend it (committed at once: a state is good for one attempt, even when the provider then refuses the code or
    cannot be reached); exchange the code with the PKCE verifier, outside any transaction; save the tokens in a
    short transaction.
    """
    claims = _state_open(state=state, user=user, integration_short_name=integration_short_name)
    integration, client = _oauth2_integration(integration_short_name)
    organization = organization_for_write(user=user, organization_id=UUID(str(claims["organization"])))
    _state_spend(claims)
    try:
        tokens = _token_request(
            client,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": settings.NEENA_OAUTH2_REDIRECT_URI,
                "code_verifier": str(claims["code_verifier"]),
            },
            integration.name,
        )
    except OAuth2Error as error:
        raise InputValidationError.single(["body", "code"], str(error), "code_refused") from None
    with transaction.atomic():
        credential, created = IntegrationCredential.objects.select_for_update().get_or_create(
            organization=organization,
            integration=integration,
            owner=user,
            defaults={"created_by_email": user.email, "secret_ciphertext": ""},
        )
        before = None if created else credential_metadata(credential)
        _store_tokens(credential, tokens, {})
        credential.modified_by_email = user.email
        credential.save()
        credential_audit_record(actor=user, credential=credential, before=before)
    return credential


def _expiring(credential: IntegrationCredential) -> bool:
    margin = timedelta(seconds=settings.NEENA_OAUTH2_REFRESH_MARGIN_SECONDS)
    return credential.expires_at is not None and credential.expires_at <= timezone.now() + margin


def _refresh_claim(credential_id: UUID) -> bool:
    """Claims the refresh of a credential whose token is still expiring and whose refresh nobody else holds (or held
    past REFRESH_CLAIM: that worker died): one conditional UPDATE, so of two workers exactly one wins."""
    now = timezone.now()
    margin = timedelta(seconds=settings.NEENA_OAUTH2_REFRESH_MARGIN_SECONDS)
    claimed = (
        IntegrationCredential.objects.filter(id=credential_id, expires_at__lte=now + margin)
        .filter(Q(refresh_claimed_until__isnull=True) | Q(refresh_claimed_until__lt=now))
        .update(refresh_claimed_until=now + REFRESH_CLAIM)
    )
    return claimed == 1


def _refresh_wait(credential_id: UUID) -> IntegrationCredential | None:
    """What a worker that lost the claim uses: the credential once it is fresh, or at once while its current token is
    still valid (the winner refreshes ahead of expiry); None when the claim lapsed without a refresh (try claiming
    again). A refresh that failed meanwhile is that failure."""
    deadline = time.monotonic() + REFRESH_CLAIM.total_seconds()
    while True:
        current = IntegrationCredential.objects.select_related("integration").filter(id=credential_id).first()
        if current is None:
            raise OAuth2Error("The credential was deleted while its token was being refreshed.")
        now = timezone.now()
        if current.status == IntegrationCredential.Status.BROKEN:
            raise OAuth2Error(current.status_reason)
        if not _expiring(current) or (current.expires_at is not None and current.expires_at > now):
            return current
        if current.refresh_claimed_until is None or current.refresh_claimed_until < now:
            return None
        if time.monotonic() > deadline:
            raise OAuth2Error(f"Another worker is still refreshing the {current.integration.name} token; try again.")
        time.sleep(REFRESH_WAIT_POLL_SECONDS)


def credential_refresh_if_expiring(*, credential: IntegrationCredential) -> IntegrationCredential:
    """Refreshes an OAuth2 access token that expires within NEENA_OAUTH2_REFRESH_MARGIN_SECONDS.

    Steps: claim the refresh (``_refresh_claim``; a worker that loses waits for the winner, or uses the still valid
    token, and never spends the refresh token a second time: providers that rotate refresh tokens would refuse the
    second use, or revoke the whole grant); read the refresh token; ask the provider, outside any transaction; save
    the new tokens and release the claim in a short transaction.

    A refresh the provider refuses marks the credential broken (visible in the API and the admin) and raises
    OAuth2Error; the step using it fails with that message.
    """
    if not _expiring(credential):
        return credential
    while not _refresh_claim(credential.id):
        waited = _refresh_wait(credential.id)
        if waited is not None:
            return waited
    try:
        claimed = IntegrationCredential.objects.select_related("integration").get(id=credential.id)
        client = oauth2_client(claimed.integration)
        previous = decrypt_json(claimed.secret_ciphertext)
        if client is None or not previous.get("refresh_token"):
            raise OAuth2Error("the token expired and there is no refresh token; connect the account again")
        tokens = _token_request(
            client,
            {"grant_type": "refresh_token", "refresh_token": previous["refresh_token"]},
            claimed.integration.name,
        )
    except OAuth2Error as error:
        reason = f"Refreshing the {credential.integration.name} token failed: {error}"
        IntegrationCredential.objects.filter(id=credential.id).update(
            status=IntegrationCredential.Status.BROKEN,
            status_reason=reason,
            refresh_claimed_until=None,
            modified_date=timezone.now(),
        )
        raise OAuth2Error(reason) from None
    except BaseException:
        # Anything else (an undecryptable secret, the job's time limit): the claim goes, the credential stays as it was.
        IntegrationCredential.objects.filter(id=credential.id).update(refresh_claimed_until=None)
        raise
    with transaction.atomic():
        saved = IntegrationCredential.objects.select_for_update().select_related("integration").filter(id=credential.id)
        refreshed = saved.first()
        if refreshed is None:
            raise OAuth2Error(f"The {credential.integration.name} credential was deleted while it was refreshed.")
        _store_tokens(refreshed, tokens, previous)
        refreshed.refresh_claimed_until = None
        refreshed.save()
    return refreshed


def credential_revoke(*, credential: IntegrationCredential) -> None:
    """Asks the provider to revoke the token, where it offers a revocation endpoint; a failure is only logged,
    so deleting a credential always works."""
    client = oauth2_client(credential.integration)
    if client is None or not client.revoke_url:
        return
    token = decrypt_json(credential.secret_ciphertext).get("access_token")
    if not token:
        return
    try:
        response = egress.request(
            "POST",
            client.revoke_url,
            trusted=True,
            data={"token": token, "client_id": client.client_id, "client_secret": client.client_secret},
            headers={"Authorization": f"Bearer {token}"},
            timeout=15,
        )
        if response.status_code >= 400:
            logger.warning("Revoking credential %s: the provider answered %s", credential.id, response.status_code)
    except (httpx.HTTPError, egress.EgressRefusedError) as error:
        logger.warning("Revoking credential %s failed: %s", credential.id, error)
