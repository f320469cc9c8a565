"""Helpers for the connector tests: a task context carrying a credential, and one step run through the engine."""

import uuid
from typing import Any

from apps.accounts.models import Organization, User
from apps.credentials.encryption import encrypt_json
from apps.credentials.models import IntegrationCredential
from apps.integrations.execution import CredentialAccess, TaskContext
from apps.integrations.models import Integration
from apps.runs.models import TaskRun
from apps.runs.services.run_creation import flow_execute
from apps.runs.services.step_execution import task_run_execute
from tests.runs.flows import make_flow, make_request, set_policy, step


def credential_context(secrets: dict[str, Any], config: dict[str, Any] | None = None) -> TaskContext:
    """The context a step's implementation gets, with the decrypted credential the engine would hand it."""
    return TaskContext(
        organization_id=uuid.uuid4(),
        flow_run_id=uuid.uuid4(),
        flow_request_id=uuid.uuid4(),
        task_run_id=uuid.uuid4(),
        idempotency_key="step:0",
        integration_entity=None,
        credential=CredentialAccess(credential_id=uuid.uuid4(), secrets=secrets, config=config or {}),
        time_limit_seconds=30.0,
    )


def oauth2_credential_store(
    user: User, organization: Organization, short_name: str, secrets: dict[str, Any]
) -> IntegrationCredential:
    """An OAuth2 integration's credential as the code exchange leaves it (credential_upsert refuses OAuth2 ones)."""
    return IntegrationCredential.objects.create(
        organization=organization,
        integration=Integration.objects.get(short_name=short_name),
        owner=user,
        secret_ciphertext=encrypt_json(secrets),
        secret_fields=sorted(secrets),
        created_by_email=user.email,
        modified_by_email=user.email,
    )


def run_one_step(user: User, organization: Organization, task_name: str, **parameters: Any) -> TaskRun:
    """Runs a one-step flow of ``task_name`` in-process, with no approval, and returns the ended step.

    The caller must stop jobs going to the broker (``monkeypatch`` ``send_steps``): the step is executed here.
    """
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow = make_flow(user, [step(0, task_name, **parameters)], [])
    flow_run = flow_execute(user=user, flow=flow, flow_request=make_request(user))
    task_run = flow_run.task_runs.get()
    task_run_execute(task_run_id=task_run.id)
    task_run.refresh_from_db()
    return task_run
