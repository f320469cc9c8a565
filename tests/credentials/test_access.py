"""Which credential a step runs with, and the failures that stop it before any call."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import Organization
from apps.credentials.encryption import encrypt_json
from apps.credentials.models import IntegrationCredential
from apps.credentials.services.access import credential_approved_for_step, credential_choice, credential_for_step
from apps.credentials.services.credentials import credential_upsert
from apps.integrations.execution import TaskError
from apps.integrations.models import Integration
from apps.runs.models import TaskRun
from apps.runs.services.run_creation import flow_execute
from apps.runs.services.step_execution import task_run_execute
from tests.runs.flows import make_flow, make_request, set_policy, step

pytestmark = pytest.mark.django_db


def _trello():
    return Integration.objects.get(short_name="trello")


def test_the_trigger_users_own_credential_comes_first(owner, teammate, organization):
    mine = credential_upsert(
        user=owner, integration_short_name="trello", api_key="owner-key", organization=organization.id
    )
    credential_upsert(user=teammate, integration_short_name="trello", api_key="mate-key", organization=organization.id)

    access = credential_for_step(organization_id=organization.id, integration=_trello(), triggered_by=owner.email)
    other = credential_for_step(organization_id=organization.id, integration=_trello(), triggered_by="webhook:x")

    assert access.credential_id == mine.id and access.secrets == {"api_key": "owner-key"}
    assert other.secrets == {"api_key": "mate-key"}  # the newest, for a trigger without a user


def test_the_approved_credential_is_found_only_in_the_runs_organization(owner, organization, outsider):
    mine = credential_upsert(user=owner, integration_short_name="trello", api_key="owner-key")
    theirs = credential_upsert(user=outsider, integration_short_name="trello", api_key="outsider-key")

    chosen = credential_choice(organization_id=organization.id, integration=_trello(), triggered_by=owner.email)
    access = credential_approved_for_step(
        organization_id=organization.id, integration=_trello(), credential_id=mine.id, owner_email=owner.email
    )

    assert chosen == mine
    assert access.secrets == {"api_key": "owner-key"}
    with pytest.raises(TaskError, match=r"credential approved for this step \(outsider@example\.com.s\) was deleted"):
        credential_approved_for_step(
            organization_id=organization.id, integration=_trello(), credential_id=theirs.id, owner_email=outsider.email
        )


def test_no_credential_and_broken_credentials_are_named(owner, organization):
    with pytest.raises(TaskError, match="No Trello credential in this organization"):
        credential_for_step(organization_id=organization.id, integration=_trello(), triggered_by=owner.email)

    credential = credential_upsert(user=owner, integration_short_name="trello", api_key="k")
    IntegrationCredential.objects.filter(id=credential.id).update(status="broken", status_reason="Revoked by user.")
    with pytest.raises(TaskError, match="broken: Revoked by user"):
        credential_for_step(organization_id=organization.id, integration=_trello(), triggered_by=owner.email)


def test_an_expired_token_without_refresh_fails_and_breaks_the_credential(owner, organization):
    slack = Integration.objects.get(short_name="slack")
    credential = IntegrationCredential.objects.create(
        organization=organization,
        integration=slack,
        owner=owner,
        secret_ciphertext=encrypt_json({"access_token": "old"}),
        expires_at=timezone.now() - timedelta(minutes=1),
    )

    with pytest.raises(TaskError, match="no refresh token"):
        credential_for_step(organization_id=organization.id, integration=slack, triggered_by=owner.email)

    credential.refresh_from_db()
    assert credential.status == IntegrationCredential.Status.BROKEN


def test_a_step_without_a_usable_credential_fails_before_calling(owner, organization, monkeypatch):
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: None)
    called = []
    monkeypatch.setattr(
        "apps.integrations.execution.task_implementation",
        lambda definition: lambda context, **parameters: called.append(parameters) or {},
    )
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    flow = make_flow(owner, [step(0, "List Trello Boards")], [])
    flow_run = flow_execute(user=owner, flow=flow, flow_request=make_request(owner))

    task_run_execute(task_run_id=flow_run.task_runs.get().id)

    task_run = TaskRun.objects.get(flow_run=flow_run)
    assert task_run.status == TaskRun.Status.FAILED
    assert "No Trello credential" in task_run.error
    assert called == []
