"""Credential rules: create-or-update keyed by (organization, integration, owner); secrets encrypted at rest; every
create, update and delete in the audit log (metadata only)."""

from typing import Any
from uuid import UUID

from django.db import transaction

from apps.accounts.models import Membership, User
from apps.accounts.roles import role_require
from apps.accounts.selectors import organization_for_write
from apps.core.exceptions import ErrorItem, InputValidationError
from apps.credentials.encryption import encrypt_json, reencrypt
from apps.credentials.models import IntegrationCredential
from apps.credentials.services.auditing import credential_audit_record, credential_metadata
from apps.credentials.services.oauth2 import credential_revoke
from apps.integrations import egress
from apps.integrations.connectors import connector_spec
from apps.integrations.models import DIRECT_SECRET_AUTH_TYPES, Integration
from apps.integrations.selectors import integration_list


def _integration_resolve(*, integration_id: UUID | None, integration_short_name: str | None) -> Integration:
    queryset = integration_list()
    if integration_id is not None:
        integration, loc = queryset.filter(id=integration_id).first(), ["body", "integration"]
    elif integration_short_name:
        integration, loc = (
            queryset.filter(short_name=integration_short_name).first(),
            ["body", "integration_short_name"],
        )
    else:
        raise InputValidationError.single(
            ["body", "integration"], "Name the integration by id or by integration_short_name.", "missing"
        )
    if integration is None:
        raise InputValidationError.single(loc, "Integration not found.", "not_found")
    if integration.auth_type not in DIRECT_SECRET_AUTH_TYPES:
        message = (
            f"{integration.name} needs no credential."
            if integration.auth_type == Integration.AuthType.NONE
            else f"{integration.name} connects through OAuth2: "
            "use GET /api/v1/integration_credentials/oauth2/authorize_url."
        )
        raise InputValidationError.single(loc, message, "unsupported_auth_type")
    return integration


def _config_addresses_check(integration: Integration, config: dict[str, Any]) -> None:
    """An early 422 for a config address the connector could never use: a URL that is not http(s), or a literal
    address the egress guard refuses (loopback, private, metadata, ...) and the allow-list does not name. Host names
    are not resolved here; the guard checks what they resolve to when the connector connects."""
    spec = connector_spec(integration.short_name)
    if spec is None:
        return
    fields = [(name, True) for name in spec.url_config] + [(name, False) for name in spec.host_config]
    problems: list[ErrorItem] = []
    for name, is_url in fields:
        value = config.get(name)
        if value in (None, ""):
            continue
        loc = ["body", "config", name]
        origin = egress.url_origin(value.strip()) if is_url and isinstance(value, str) else None
        if not isinstance(value, str):
            problems.append(ErrorItem(loc=loc, msg=f"'{name}' must be a string.", type="invalid"))
        elif is_url and origin is None:
            problems.append(
                ErrorItem(
                    loc=loc,
                    msg=f"'{name}' must be an http or https URL with a host, e.g. 'https://api.example.com/v1'.",
                    type="invalid",
                )
            )
        else:
            refused = egress.literal_host_problem(origin[0] if origin else value)
            if refused:
                problems.append(
                    ErrorItem(
                        loc=loc,
                        msg=f"'{name}': {refused}; internal targets are only reachable when their host is in "
                        "NEENA_HTTP_ALLOWLIST.",
                        type="address_refused",
                    )
                )
    if problems:
        raise InputValidationError(problems)


def credential_check(
    *,
    integration: UUID | None = None,
    integration_short_name: str | None = None,
    api_key: str | None = None,
    credentials: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
) -> tuple[Integration, dict[str, Any]]:
    """The rules ``credential_upsert`` applies before writing, for callers that report them before saving (the
    admin's form): the integration exists and takes a secret handed over directly, the config's addresses are usable,
    and there is a secret. Returns the integration and the secret fields to store."""
    resolved = _integration_resolve(integration_id=integration, integration_short_name=integration_short_name)
    _config_addresses_check(resolved, config or {})
    secrets = {**(credentials or {}), **({"api_key": api_key} if api_key else {})}
    if not secrets:
        raise InputValidationError.single(
            ["body", "api_key"], "Give the api_key (or credential, or credentials) to store.", "missing"
        )
    return resolved, secrets


@transaction.atomic
def credential_upsert(
    *,
    user: User,
    integration: UUID | None = None,
    integration_short_name: str | None = None,
    api_key: str | None = None,
    credentials: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    organization: UUID | None = None,
) -> IntegrationCredential:
    """Stores the caller's secret for an integration, replacing the one they had there; the status resets to active.

    ``api_key`` is shorthand for ``credentials={"api_key": ...}``; the two are merged.
    """
    target = organization_for_write(user=user, organization_id=organization)
    resolved, secrets = credential_check(
        integration=integration,
        integration_short_name=integration_short_name,
        api_key=api_key,
        credentials=credentials,
        config=config,
    )
    credential, created = IntegrationCredential.objects.select_for_update().get_or_create(
        organization=target,
        integration=resolved,
        owner=user,
        defaults={"created_by_email": user.email, "secret_ciphertext": ""},
    )
    before = None if created else credential_metadata(credential)
    credential.secret_ciphertext = encrypt_json(secrets)
    credential.secret_fields = sorted(secrets)
    credential.config = config or {}
    credential.status = IntegrationCredential.Status.ACTIVE
    credential.status_reason = ""
    credential.modified_by_email = user.email
    credential.save()
    credential_audit_record(actor=user, credential=credential, before=before)
    return credential


def credential_delete(*, user: User, credential: IntegrationCredential) -> None:
    """Revokes the token at the provider where it offers that (outside any transaction: a network call), then deletes
    the credential and records it in the audit log together. The owner of the credential needs the member role in its
    organization, anyone else the admin role."""
    needed = Membership.Role.MEMBER if credential.owner_id == user.id else Membership.Role.ADMIN
    role_require(user=user, organization_id=credential.organization_id, role=needed)
    credential_revoke(credential=credential)
    with transaction.atomic():
        before = credential_metadata(credential)
        credential_audit_record(actor=user, credential=credential, before=before, deleted=True)
        credential.delete()


@transaction.atomic
def credentials_reencrypt() -> int:
    """Re-encrypts every stored secret with the newest key, after a key was added first to NEENA_ENCRYPTION_KEYS; the
    old keys can then be removed. Returns how many secrets were rewritten.

    OAuth2 states in flight are not stored anywhere: one encrypted with a removed key answers ``state_invalid`` (the
    user starts again), so remove an old key no sooner than NEENA_OAUTH2_STATE_TTL_SECONDS after adding the new one.
    """
    count = 0
    for credential in IntegrationCredential.objects.select_for_update().only("id", "secret_ciphertext"):
        credential.secret_ciphertext = reencrypt(credential.secret_ciphertext)
        credential.save(update_fields=["secret_ciphertext"])
        count += 1
    return count
