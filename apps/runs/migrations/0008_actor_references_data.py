"""Existing runs and approval decisions get references to their actors, from the strings they recorded.

- A run's ``triggered_by`` holding a user's email (compared case-insensitively) references that user.
- A run started by a webhook delivery (``triggered_by`` ``webhook:<name>``) references the operation whose trigger
  run started it (``TriggerRun.flow_run``); without one, the operation of that name in the run's organization, when
  exactly one has it. Otherwise it is left without a reference: the string stays, and nothing is guessed.
- A decision's ``decided_by`` holding a user's email references that user; ``approval timeout`` references nobody.

The strings are kept as they are: the API still reports them.
"""

from typing import Any

from django.db import migrations

WEBHOOK_PREFIX = "webhook:"
BATCH = 500


def _users_by_email(apps: Any) -> dict[str, Any]:
    user_model = apps.get_model("accounts", "User")
    return {email.lower(): user_id for user_id, email in user_model.objects.values_list("id", "email")}


def _operation_of(apps: Any, flow_run: Any) -> Any:
    trigger_run = apps.get_model("webhooks", "TriggerRun").objects.filter(flow_run_id=flow_run.id).first()
    if trigger_run is not None:
        return trigger_run.operation_id
    name = flow_run.triggered_by[len(WEBHOOK_PREFIX) :]
    candidates = list(
        apps.get_model("webhooks", "WebhookTriggerOperation")
        .objects.filter(organization_id=flow_run.organization_id, name=name)
        .values_list("id", flat=True)[:2]
    )
    return candidates[0] if len(candidates) == 1 else None


def references_fill(apps: Any, schema_editor: Any) -> None:
    users = _users_by_email(apps)
    flow_run_model = apps.get_model("runs", "FlowRun")
    runs = flow_run_model.objects.filter(trigger_user__isnull=True, trigger_webhook_operation__isnull=True).exclude(
        triggered_by=""
    )
    for flow_run in runs.only("id", "organization_id", "triggered_by").iterator(chunk_size=BATCH):
        if flow_run.triggered_by.startswith(WEBHOOK_PREFIX):
            operation_id = _operation_of(apps, flow_run)
            if operation_id is not None:
                flow_run_model.objects.filter(id=flow_run.id).update(trigger_webhook_operation_id=operation_id)
        elif flow_run.triggered_by.lower() in users:
            flow_run_model.objects.filter(id=flow_run.id).update(trigger_user_id=users[flow_run.triggered_by.lower()])
    decision_model = apps.get_model("runs", "ApprovalDecision")
    decisions = decision_model.objects.filter(decided_by_user__isnull=True).values_list("id", "decided_by")
    for decision_id, decided_by in decisions.iterator(chunk_size=BATCH):
        user_id = users.get(decided_by.lower())
        if user_id is not None:
            decision_model.objects.filter(id=decision_id).update(decided_by_user_id=user_id)


class Migration(migrations.Migration):
    dependencies = [("runs", "0007_actor_references"), ("webhooks", "0003_standard_webhooks_secrets")]

    # Backwards: the references go with the columns; the strings were never changed.
    operations = [migrations.RunPython(references_fill, migrations.RunPython.noop)]
