"""Connecting an integration through OAuth2: the authorize URL (signed, expiring state and PKCE), the code
exchange, refreshing tokens before they expire, and revoking them when a credential is deleted."""

import base64
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import httpx
from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.selectors import organization_for_write
from apps.core.exceptions import InputValidationError
from apps.credentials.encryption import decrypt_json, encrypt_json
from apps.credentials.models import IntegrationCredential, OAuth2Authorization
from apps.integrations.models import Integration
from apps.integrations.selectors import integration_get_by_short_name

logger = logging.getLogger(__name__)

STATE_SALT = "neena.oauth2.state"


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


@transaction.atomic
def oauth2_authorize_url(*, user: User, integration_short_name: str, organization: UUID | None = None) -> str:
    """The provider's authorize URL: client id, redirect URI, scopes, a signed expiring state bound to the user and
    a PKCE S256 challenge whose verifier stays on the server."""
    integration, client = _oauth2_integration(integration_short_name)
    target = organization_for_write(user=user, organization_id=organization)
    verifier = secrets.token_urlsafe(64)
    authorization = OAuth2Authorization.objects.create(
        user=user,
        organization=target,
        integration=integration,
        code_verifier_ciphertext=encrypt_json({"code_verifier": verifier}),
        created_by_email=user.email,
        modified_by_email=user.email,
    )
    state = signing.dumps({"id": str(authorization.id), "user": str(user.id)}, salt=STATE_SALT)
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


def _token_request(client: OAuth2Client, data: dict[str, str], service: str) -> dict[str, Any]:
    try:
        response = httpx.post(
            client.token_url,
            data={**data, "client_id": client.client_id, "client_secret": client.client_secret},
            headers={"Accept": "application/json"},
            timeout=30,
        )
    except httpx.HTTPError as error:
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


@transaction.atomic
def oauth2_code_exchange(*, user: User, integration_short_name: str, code: str, state: str) -> IntegrationCredential:
    """Checks the state (signature, expiry, the caller, single use), exchanges the code with the PKCE verifier and
    stores the tokens encrypted as the caller's credential."""
    loc = ["body", "state"]
    try:
        payload = signing.loads(state, salt=STATE_SALT, max_age=settings.NEENA_OAUTH2_STATE_TTL_SECONDS)
    except signing.SignatureExpired:
        raise InputValidationError.single(loc, "The state has expired; start again.", "state_expired") from None
    except signing.BadSignature:
        raise InputValidationError.single(loc, "The state is not one Neena issued.", "state_invalid") from None
    authorization = (
        OAuth2Authorization.objects.select_for_update()
        .select_related("integration")
        .filter(id=payload.get("id"), user=user, integration__short_name=integration_short_name)
        .first()
    )
    if authorization is None or payload.get("user") != str(user.id):
        raise InputValidationError.single(loc, "The state was used already or belongs to someone else.", "state_used")
    integration, client = _oauth2_integration(integration_short_name)
    verifier = decrypt_json(authorization.code_verifier_ciphertext)["code_verifier"]
    organization_id = authorization.organization_id
    authorization.delete()
    try:
        tokens = _token_request(
            client,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": settings.NEENA_OAUTH2_REDIRECT_URI,
                "code_verifier": verifier,
            },
            integration.name,
        )
    except OAuth2Error as error:
        raise InputValidationError.single(["body", "code"], str(error), "code_refused") from None
    credential, _ = IntegrationCredential.objects.select_for_update().get_or_create(
        organization_id=organization_id,
        integration=integration,
        owner=user,
        defaults={"created_by_email": user.email, "secret_ciphertext": ""},
    )
    _store_tokens(credential, tokens, {})
    credential.modified_by_email = user.email
    credential.save()
    return credential


def credential_refresh_if_expiring(*, credential: IntegrationCredential) -> IntegrationCredential:
    """Refreshes an OAuth2 access token that expires within NEENA_OAUTH2_REFRESH_MARGIN_SECONDS.

    A refresh the provider refuses marks the credential broken (visible in the API and the admin) and raises
    OAuth2Error; the step using it fails with that message.
    """
    margin = timedelta(seconds=settings.NEENA_OAUTH2_REFRESH_MARGIN_SECONDS)
    if credential.expires_at is None or credential.expires_at > timezone.now() + margin:
        return credential
    with transaction.atomic():
        locked = IntegrationCredential.objects.select_for_update().select_related("integration").get(id=credential.id)
        if locked.expires_at and locked.expires_at > timezone.now() + margin:
            return locked  # another worker refreshed it meanwhile
        client = oauth2_client(locked.integration)
        previous = decrypt_json(locked.secret_ciphertext)
        try:
            if client is None or not previous.get("refresh_token"):
                raise OAuth2Error("the token expired and there is no refresh token; connect the account again")
            tokens = _token_request(
                client,
                {"grant_type": "refresh_token", "refresh_token": previous["refresh_token"]},
                locked.integration.name,
            )
        except OAuth2Error as error:
            failure = error
        else:
            _store_tokens(locked, tokens, previous)
            locked.save()
            return locked
    # Outside the transaction, so the broken status stays whatever the caller does next.
    reason = f"Refreshing the {credential.integration.name} token failed: {failure}"
    IntegrationCredential.objects.filter(id=credential.id).update(
        status=IntegrationCredential.Status.BROKEN, status_reason=reason, modified_date=timezone.now()
    )
    raise OAuth2Error(reason)


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
        response = httpx.post(
            client.revoke_url,
            data={"token": token, "client_id": client.client_id, "client_secret": client.client_secret},
            headers={"Authorization": f"Bearer {token}"},
            timeout=15,
        )
        if response.status_code >= 400:
            logger.warning("Revoking credential %s: the provider answered %s", credential.id, response.status_code)
    except httpx.HTTPError as error:
        logger.warning("Revoking credential %s failed: %s", credential.id, error)
