"""Webhook trigger operation rules: templates may only name the definition's event fields; every operation has its
own signing secret, stored encrypted and shown only when it is made."""

import base64
import secrets
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from apps.accounts.models import Membership, User
from apps.accounts.roles import role_require
from apps.accounts.selectors import organization_for_write
from apps.audit.services import audit_event_record
from apps.core.exceptions import InputValidationError
from apps.credentials.encryption import decrypt_json, encrypt_json, reencrypt
from apps.integrations.connectors.base import SignatureScheme
from apps.integrations.models import WebhookTriggerDefinition
from apps.integrations.selectors import webhook_trigger_definition_list
from apps.webhooks.models import WebhookTriggerOperation
from apps.webhooks.signatures import STANDARD_SECRET_PREFIX, standard_secret_is_valid
from apps.webhooks.template import placeholder_names

# The key of the secret inside its encrypted JSON object (a field name, not a secret).
SECRET_FIELD = "signing_secret"  # noqa: S105
# 32 random bytes: as strong as the HMAC-SHA256 keyed with it.
SECRET_BYTES = 32

Status = WebhookTriggerOperation.Status


def _definition_resolve(*, definition_id: UUID) -> WebhookTriggerDefinition:
    definition = webhook_trigger_definition_list().filter(id=definition_id).first()
    if definition is None:
        raise InputValidationError.single(
            ["body", "webhook_trigger_definition"], "Webhook trigger definition not found.", "not_found"
        )
    return definition


def _check_template(*, template_body: str, definition: WebhookTriggerDefinition) -> None:
    known = definition.event_field_names
    unknown = [name for name in placeholder_names(template_body) if name not in known]
    if unknown:
        raise InputValidationError.single(
            ["body", "template_body"],
            f"Unknown event field(s) {', '.join(f'<{{{name}}}>' for name in unknown)}; "
            f"'{definition.trigger_name}' has: {', '.join(known) or 'none'}.",
            "template.unknown_field",
        )


def _new_secret(*, scheme: str) -> tuple[str, str]:
    """A fresh signing secret and its ciphertext: for Standard Webhooks ``whsec_`` and the base64 of the random key
    bytes, as the spec says; for the others (GitHub takes any string) the URL-safe text of the bytes."""
    key = secrets.token_bytes(SECRET_BYTES)
    if scheme == SignatureScheme.STANDARD_WEBHOOKS:
        secret = STANDARD_SECRET_PREFIX + base64.b64encode(key).decode()
    else:
        secret = base64.urlsafe_b64encode(key).rstrip(b"=").decode()
    return secret, encrypt_json({SECRET_FIELD: secret})


def _check_given_secret(*, signing_secret: str, definition: WebhookTriggerDefinition) -> None:
    """A secret given for a Standard Webhooks definition must be one (``whsec_<base64>``), or nothing would verify."""
    if definition.signature_scheme == SignatureScheme.STANDARD_WEBHOOKS and not standard_secret_is_valid(
        signing_secret
    ):
        raise InputValidationError.single(
            ["body", "signing_secret"],
            "A Standard Webhooks secret is whsec_ followed by the base64 of its key bytes.",
            "secret_invalid",
        )


def trigger_operation_check(
    *, definition: WebhookTriggerDefinition, template_body: str, signing_secret: str | None = None
) -> None:
    """The rules create and update apply before writing, for callers that report them before saving (the admin's
    form): the template names only the definition's event fields, and a secret given fits its signature scheme."""
    _check_template(template_body=template_body, definition=definition)
    if signing_secret:
        _check_given_secret(signing_secret=signing_secret, definition=definition)


def trigger_operation_secret(*, operation: WebhookTriggerOperation) -> str:
    """The operation's signing secret in clear ("" when it has none); raises DecryptionError when no configured key
    opens it."""
    if not operation.signing_secret_ciphertext:
        return ""
    return str(decrypt_json(operation.signing_secret_ciphertext).get(SECRET_FIELD, ""))


def trigger_operation_inbound_url(*, operation_id: UUID) -> str:
    """Where the integration delivers the operation's events: NEENA_PUBLIC_BASE_URL plus the inbound path."""
    path = reverse("webhook-inbound", kwargs={"operation_id": operation_id})
    return settings.NEENA_PUBLIC_BASE_URL.rstrip("/") + path


@transaction.atomic
def trigger_operation_create(
    *,
    user: User,
    name: str,
    webhook_trigger_definition: UUID,
    template_body: str,
    status: str = Status.INACTIVE,
    organization: UUID | None = None,
    signing_secret: str | None = None,
) -> tuple[WebhookTriggerOperation, str]:
    """Creates the operation with a signing secret (the one given, for providers that issue their own, such as
    Slack's and Zendesk's; else a new one); returns it with the secret in clear, shown once (reads never return it)."""
    target = organization_for_write(user=user, organization_id=organization, role=Membership.Role.ADMIN)
    definition = _definition_resolve(definition_id=webhook_trigger_definition)
    trigger_operation_check(definition=definition, template_body=template_body, signing_secret=signing_secret)
    if signing_secret:
        secret, ciphertext = signing_secret, encrypt_json({SECRET_FIELD: signing_secret})
    else:
        secret, ciphertext = _new_secret(scheme=definition.signature_scheme)
    operation = WebhookTriggerOperation.objects.create(
        organization=target,
        name=name,
        webhook_trigger_definition=definition,
        template_body=template_body,
        status=status,
        signing_secret_ciphertext=ciphertext,
        created_by_email=user.email,
        modified_by_email=user.email,
    )
    return operation, secret


@transaction.atomic
def trigger_operation_update(
    *,
    user: User,
    operation: WebhookTriggerOperation,
    name: str,
    template_body: str,
    status: str | None = None,
    signing_secret: str | None = None,
) -> WebhookTriggerOperation:
    """Replaces the name and template (placeholders checked as on create) and, when given, the status and the
    signing secret (write-only: for providers that issue their own).

    Updating a failed operation reactivates it (status active unless the update names another), and every update
    clears the count of failures in a row: the update is how the owner says the cause was dealt with.
    """
    role_require(user=user, organization_id=operation.organization_id, role=Membership.Role.ADMIN)
    trigger_operation_check(
        definition=operation.webhook_trigger_definition, template_body=template_body, signing_secret=signing_secret
    )
    if status is None:
        status = Status.ACTIVE if operation.status == Status.FAILED else operation.status
    operation.consecutive_failures = 0
    operation.name = name
    operation.template_body = template_body
    operation.status = status
    if signing_secret:
        operation.signing_secret_ciphertext = encrypt_json({SECRET_FIELD: signing_secret})
    operation.modified_by_email = user.email
    operation.save()
    return operation


@transaction.atomic
def trigger_operation_rotate_secret(*, user: User, operation: WebhookTriggerOperation) -> str:
    """Replaces the signing secret at once (deliveries signed with the old one answer 401 from now on); returns the
    new one in clear, to be shown once."""
    role_require(user=user, organization_id=operation.organization_id, role=Membership.Role.ADMIN)
    secret, operation.signing_secret_ciphertext = _new_secret(
        scheme=operation.webhook_trigger_definition.signature_scheme
    )
    described = {"name": operation.name, "status": operation.status}
    operation.modified_by_email = user.email
    operation.save(update_fields=["signing_secret_ciphertext", "modified_by_email", "modified_date"])
    # Never the secret (old or new): the log says that a rotation happened, to which operation, and who did it.
    audit_event_record(
        organization_id=operation.organization_id,
        actor=user,
        action="webhook_operation.secret_rotated",
        object_type="webhook_operation",
        object_id=operation.id,
        before=described,
        after={**described, "secret_rotated_at": operation.modified_date},
    )
    return secret


@transaction.atomic
def trigger_operation_delete(*, user: User, operation: WebhookTriggerOperation) -> None:
    """Deletes the operation and its trigger runs; the flow requests and runs they started stay."""
    role_require(user=user, organization_id=operation.organization_id, role=Membership.Role.ADMIN)
    operation.delete()


@transaction.atomic
def trigger_operation_secrets_reencrypt() -> int:
    """Re-encrypts every operation's signing secret with the newest of NEENA_ENCRYPTION_KEYS, as
    ``credentials_reencrypt`` does for credentials, so an old key can be removed without breaking deliveries.
    Returns how many secrets were rewritten."""
    count = 0
    stored = WebhookTriggerOperation.objects.select_for_update().exclude(signing_secret_ciphertext="")
    for operation in stored.only("id", "signing_secret_ciphertext"):
        operation.signing_secret_ciphertext = reencrypt(operation.signing_secret_ciphertext)
        operation.save(update_fields=["signing_secret_ciphertext"])
        count += 1
    return count
