"""Webhook trigger operation rules: templates may only name the definition's event fields."""

from uuid import UUID

from django.db import transaction

from apps.accounts.models import User
from apps.accounts.selectors import organization_for_write
from apps.core.exceptions import InputValidationError
from apps.integrations.models import WebhookTriggerDefinition
from apps.integrations.selectors import webhook_trigger_definition_list
from apps.webhooks.models import WebhookTriggerOperation
from apps.webhooks.template import placeholder_names


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


@transaction.atomic
def trigger_operation_create(
    *,
    user: User,
    name: str,
    webhook_trigger_definition: UUID,
    template_body: str,
    status: str = WebhookTriggerOperation.Status.INACTIVE,
    organization: UUID | None = None,
) -> WebhookTriggerOperation:
    target = organization_for_write(user=user, organization_id=organization)
    definition = _definition_resolve(definition_id=webhook_trigger_definition)
    _check_template(template_body=template_body, definition=definition)
    return WebhookTriggerOperation.objects.create(
        organization=target,
        name=name,
        webhook_trigger_definition=definition,
        template_body=template_body,
        status=status,
        created_by_email=user.email,
        modified_by_email=user.email,
    )


@transaction.atomic
def trigger_operation_delete(*, operation: WebhookTriggerOperation) -> None:
    operation.delete()
