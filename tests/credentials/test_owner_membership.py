"""A credential whose owner left the organization (or was deactivated) is never used by its runs: the step fails
clearly, before anything is sent, whether the credential is chosen when the step runs or was fixed by an approval."""

import pytest
from django.test import override_settings

from apps.accounts.models import Membership, Organization, User
from apps.runs.models import FlowRun, TaskRun
from apps.runs.services.approval import run_approve
from apps.runs.services.run_creation import flow_execute
from tests.fakes.slack import BOT_TOKEN, FakeSlack
from tests.integrations.connectors.steps import oauth2_credential_store, run_one_step
from tests.runs.flows import make_flow, make_request, run_steps, set_policy, step

pytestmark = pytest.mark.django_db


@pytest.fixture
def slack():
    fake = FakeSlack()
    fake.add_channel("support", num_members=3)
    try:
        with override_settings(NEENA_SLACK_BASE_URL=fake.base_url):
            yield fake
    finally:
        fake.stop()


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: None)


def _teammates_slack_credential(teammate: User, organization: Organization) -> None:
    oauth2_credential_store(teammate, organization, "slack", {"access_token": BOT_TOKEN, "token_type": "bot"})


def _remove(user: User, organization: Organization) -> None:
    Membership.objects.filter(user=user, organization=organization).delete()


def test_an_approved_step_fails_when_the_credential_owner_was_removed_meanwhile(owner, teammate, organization, slack):
    _teammates_slack_credential(teammate, organization)
    flow = make_flow(owner, [step(0, "Post Slack Message", channel="#support", text="Refund done.")], [])
    flow_run = run_steps(flow_execute(user=owner, flow=flow, flow_request=make_request(owner)))
    assert flow_run.status == FlowRun.Status.AWAITING_APPROVAL

    _remove(teammate, organization)
    run_approve(flow_run=flow_run, user=owner)
    flow_run = run_steps(flow_run)

    task_run = flow_run.task_runs.get()
    assert task_run.status == TaskRun.Status.FAILED
    assert "teammate@example.com" in task_run.error
    assert "credential owner is no longer a member" in task_run.error
    assert flow_run.status == FlowRun.Status.FAILED
    assert slack.requests == []


@pytest.mark.parametrize("leave", ["removed", "deactivated"])
def test_a_step_does_not_run_with_the_credential_of_someone_who_left(owner, teammate, organization, slack, leave):
    _teammates_slack_credential(teammate, organization)
    if leave == "removed":
        _remove(teammate, organization)
    else:
        User.objects.filter(id=teammate.id).update(is_active=False)

    task_run = run_one_step(owner, organization, "Post Slack Message", channel="#support", text="A new ticket.")

    assert task_run.status == TaskRun.Status.FAILED
    assert "credential owner is no longer a member" in task_run.error
    assert slack.requests == []


def test_a_members_credential_still_runs(owner, teammate, organization, slack):
    _teammates_slack_credential(teammate, organization)
    set_policy(organization, Organization.ApprovalPolicy.NEVER)

    task_run = run_one_step(owner, organization, "Post Slack Message", channel="#support", text="A new ticket.")

    assert task_run.status == TaskRun.Status.COMPLETED, task_run.error
    assert len(slack.requests) == 1
