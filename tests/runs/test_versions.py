"""Runs are pinned to a flow version, and what an approval showed is exactly what runs (issue 13).

The scenario of the issue: a run parks before a side-effecting step; the reviewer approves; before the worker picks
the step up, someone PUTs the flow with another task at that index. The approved step must execute exactly what was
approved, and the next run the new version. The Zendesk fake counts the calls per task: an internal note is a
comment with ``public: false``, a public reply one with ``public: true``. Steps are run in-process
(``task_run_execute``), as a worker would, with nothing sent to the broker.
"""

from uuid import UUID

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from apps.accounts.models import Organization
from apps.credentials.services.credentials import credential_upsert
from apps.integrations.models import Notification, TaskDefinition
from apps.runs.models import ApprovalDecision, FlowRun, TaskRun
from apps.runs.services import approved_steps
from apps.runs.services.step_execution import task_run_execute
from tests.factories import shared_organization, task_definition
from tests.fakes.zendesk import AGENT_EMAIL, API_TOKEN, SUBDOMAIN, FakeZendesk

pytestmark = pytest.mark.django_db

NOTE, REPLY = "Add Zendesk Internal Note", "Add Zendesk Public Reply"


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: None)


@pytest.fixture
def zendesk():
    fake = FakeZendesk()
    try:
        with override_settings(NEENA_ZENDESK_BASE_URL=fake.base_url):
            yield fake
    finally:
        fake.stop()


@pytest.fixture
def ticket(zendesk):
    return zendesk.add_ticket(subject="Charged twice", description="Charged twice in March.")


def _zendesk_credential(user, *, api_key=API_TOKEN, subdomain=SUBDOMAIN, **fields):
    """Saves ``user``'s Zendesk credential (the fake's token and subdomain unless told otherwise)."""
    return credential_upsert(
        user=user,
        integration_short_name="zendesk",
        api_key=api_key,
        config={"email": AGENT_EMAIL, "subdomain": subdomain},
        **fields,
    )


@pytest.fixture
def credential(owner):
    return _zendesk_credential(owner)


def _calls(zendesk, ticket):
    """What each task did to the ticket: the comments after its description, as (public, body)."""
    return [(comment["public"], comment["body"]) for comment in zendesk.comments[ticket["id"]][1:]]


def _flow_body(task, ticket, body="Refund the second charge.", **fields):
    parameters = (
        {"recipient": "ann@example.com", "message": body}
        if task == "Send Notification"
        else {"ticket_id": ticket["id"], "body": body}
    )
    return {
        "name": "Answer the ticket",
        "task_operations": [
            {"index": 0, "name": task, "task_definition": str(task_definition(task).id), "parameters": parameters}
        ],
        "dependencies": [],
        **fields,
    }


def _execute(api, flow, request):
    response = api.post(f"/api/v1/flows/execute?flow_id={flow['id']}&flow_request_id={request['id']}")
    assert response.status_code == 200, response.json()
    return response.json()


def _run(api, run):
    return api.get(f"/api/v1/flow_runs/?id={run['id']}").json()


def _step(run, index=0):
    return run["task_runs"][index]


def _work(run, index=0):
    """What a worker does with the step's job."""
    task_run_execute(task_run_id=UUID(_step(run, index)["id"]))


@pytest.fixture
def parked(api, ticket, credential):
    """A run of version 1 (an internal note) parked before its side effect, with the flow and the request."""
    flow = api.post("/api/v1/flows/", _flow_body(NOTE, ticket), format="json").json()
    request = api.post("/api/v1/flow_requests/", {"request_instructions": "Answer the ticket."}, format="json").json()
    run = _execute(api, flow, request)
    _work(run)
    run = _run(api, run)
    assert (run["status"], _step(run)["status"], run["flow_version"]) == ("awaiting_approval", "awaiting_approval", 1)
    return flow, request, run


def _approve(api, run, **body):
    return api.put(f"/api/v1/flow_runs/approve?flow_run_id={run['id']}", body, format="json")


def test_the_approved_step_executes_what_was_approved_after_the_flow_is_edited(api, zendesk, ticket, parked):
    flow, request, run = parked

    approved = _approve(api, run, parameters={"body": "Internal: refund approved."}, comment="ok")
    # Before a worker picks the approved step up, the flow is changed to reply publicly at that index.
    edited = api.put("/api/v1/flows/", _flow_body(REPLY, ticket, "Dear customer...", id=flow["id"]), format="json")
    _work(run)

    assert approved.status_code == 200
    assert edited.json()["version"] == 2
    assert _calls(zendesk, ticket) == [(False, "Internal: refund approved.")]
    done = _run(api, run)
    assert (done["status"], done["flow_version"]) == ("completed", 1)
    recorded = _step(done)["approved_step"]
    assert (recorded["task_name"], recorded["integration"], recorded["parameters"]) == (
        NOTE,
        "zendesk",
        {"ticket_id": ticket["id"], "body": "Internal: refund approved."},
    )
    assert recorded["credential"]["owner_email"] == "owner@example.com"
    assert ApprovalDecision.objects.get(task_run_id=_step(run)["id"]).approved_step == recorded

    # The next run executes version 2, and asks for its own approval of the public reply.
    following = _execute(api, flow, request)
    _work(following)
    following = _run(api, following)
    assert (following["flow_version"], following["status"]) == (2, "awaiting_approval")
    assert REPLY in _step(following)["task_prep_prompt"]["messages"][1]["content"]
    assert _calls(zendesk, ticket) == [(False, "Internal: refund approved.")]


def test_approving_after_the_flow_changed_under_a_parked_run_approves_the_parked_step(
    api, owner, organization, zendesk, ticket
):
    """What answered 500 (KeyError: 'recipient') and left the run parked for good: the override check read the new
    task's parameters."""
    flow = api.post("/api/v1/flows/", _flow_body("Send Notification", ticket), format="json").json()
    request = api.post("/api/v1/flow_requests/", {"request_instructions": "Tell Ann."}, format="json").json()
    run = _execute(api, flow, request)
    _work(run)
    api.put("/api/v1/flows/", _flow_body(NOTE, ticket, id=flow["id"]), format="json")

    approved = _approve(api, run, parameters={"message": "Your refund is on its way."})
    _work(run)

    assert approved.status_code == 200
    assert approved.json()["approval_status"] == "approved"
    assert _run(api, run)["status"] == "completed"
    assert list(Notification.objects.values_list("recipient", "message")) == [
        ("ann@example.com", "Your refund is on its way.")
    ]
    assert zendesk.requests == []


def test_editing_or_deleting_the_flow_changes_nothing_of_a_created_run(api, owner, organization):
    Organization.objects.filter(id=organization.id).update(approval_policy=Organization.ApprovalPolicy.NEVER)
    format_text = str(task_definition("Format Text").id)
    body = {
        "name": "Two steps",
        "task_operations": [
            {"index": 0, "name": "First", "task_definition": format_text, "parameters": {"template": "one"}},
            {"index": 1, "name": "Second", "task_definition": format_text, "parameters": {"template": "two"}},
        ],
        "dependencies": [{"source_task_operation": 0, "target_task_operation": 1}],
    }
    flow = api.post("/api/v1/flows/", body, format="json").json()
    request = api.post("/api/v1/flow_requests/", {"request_instructions": "x"}, format="json").json()
    run = _execute(api, flow, request)
    body["id"] = flow["id"]
    body["task_operations"] = [{**body["task_operations"][1], "index": 0, "parameters": {"template": "changed"}}]
    body["dependencies"] = []
    assert api.put("/api/v1/flows/", body, format="json").json()["version"] == 2
    assert api.delete(f"/api/v1/flows/?id={flow['id']}").status_code == 200

    _work(run, 0)
    _work(run, 1)

    done = _run(api, run)
    assert done["status"] == "completed"
    assert [step["result"] for step in done["task_runs"]] == [{"text": "one"}, {"text": "two"}]


def test_a_retried_run_executes_its_own_version(api, owner, organization):
    Organization.objects.filter(id=organization.id).update(approval_policy=Organization.ApprovalPolicy.NEVER)
    format_text = str(task_definition("Format Text").id)
    body = {
        "name": "Reads the request",
        "task_operations": [
            {
                "index": 0,
                "name": "Greet",
                "task_definition": format_text,
                "parameters": {"template": "{{ request.metadata.name }}"},
            }
        ],
    }
    flow = api.post("/api/v1/flows/", body, format="json").json()
    request = api.post("/api/v1/flow_requests/", {"request_instructions": "x"}, format="json").json()
    run = _execute(api, flow, request)
    _work(run)
    assert _run(api, run)["status"] == "failed"
    body.update(id=flow["id"], task_operations=[{**body["task_operations"][0], "parameters": {"template": "v2"}}])
    api.put("/api/v1/flows/", body, format="json")
    api.put(
        "/api/v1/flow_requests/",
        {"id": request["id"], "request_instructions": "x", "request_metadata": {"name": "Ann"}},
        format="json",
    )

    retried = api.post(f"/api/v1/flow_runs/retry?flow_run_id={run['id']}")
    _work(run)
    rerun = api.post(f"/api/v1/flow_runs/rerun?flow_run_id={run['id']}").json()

    assert retried.status_code == 200
    assert _step(_run(api, run))["result"] == {"text": "Ann"}
    assert rerun["flow_version"] == 1  # a rerun repeats the run's own version


# --- What an approval fixes, checked when the step runs ---------------------------------------------------------


def test_a_task_removed_from_the_catalogue_after_approval_fails_the_step(api, zendesk, ticket, parked):
    _, _, run = parked
    _approve(api, run)
    TaskDefinition.objects.filter(task_name=NOTE).update(deleted_at=timezone.now())

    _work(run)

    step = _step(_run(api, run))
    assert step["status"] == "failed"
    assert step["error"] == f"The task '{NOTE}' was removed from the catalogue; the step is not run."
    assert _calls(zendesk, ticket) == []


def test_a_task_redeclared_in_the_catalogue_after_approval_fails_the_step(api, zendesk, ticket, parked):
    _, _, run = parked
    _approve(api, run)
    definition = task_definition(NOTE)
    definition.parameters = [*definition.parameters[:1], {**definition.parameters[1], "doc_string": "Changed."}]
    definition.save(update_fields=["parameters"])

    _work(run)

    assert _step(_run(api, run))["error"] == (
        f"The task '{NOTE}' changed in the catalogue after the step was approved; it is not run."
    )
    assert _calls(zendesk, ticket) == []


def test_parameters_changed_after_approval_fail_the_step(api, zendesk, ticket, parked):
    _, _, run = parked
    _approve(api, run)
    task_run = TaskRun.objects.get(id=_step(run)["id"])
    answer = task_run.task_prep_answer
    answer["parameters"][1]["value"] = "Something else entirely."
    TaskRun.objects.filter(id=task_run.id).update(task_prep_answer=answer)

    task_run_execute(task_run_id=task_run.id)

    assert _step(_run(api, run))["error"] == "The step's parameters are not those that were approved; it is not run."
    assert _calls(zendesk, ticket) == []


def test_a_record_that_does_not_match_its_fingerprint_fails_the_step(api, zendesk, ticket, parked):
    _, _, run = parked
    _approve(api, run)
    task_run = TaskRun.objects.get(id=_step(run)["id"])
    TaskRun.objects.filter(id=task_run.id).update(
        approved_step={**task_run.approved_step, "task_name": REPLY, "definition_digest": "0" * 64}
    )

    task_run_execute(task_run_id=task_run.id)

    assert "does not match its fingerprint" in _step(_run(api, run))["error"]
    assert _calls(zendesk, ticket) == []


def test_the_approved_credential_deleted_after_approval_fails_the_step(api, zendesk, ticket, parked, credential):
    _, _, run = parked
    _approve(api, run)
    credential.delete()

    _work(run)

    step = _step(_run(api, run))
    assert step["status"] == "failed"
    assert step["error"].startswith(
        "The Zendesk credential approved for this step (owner@example.com's) was deleted; the step is not run"
    )
    assert _calls(zendesk, ticket) == []


def test_the_approved_credential_pointed_elsewhere_after_approval_fails_the_step(api, owner, zendesk, ticket, parked):
    """Replacing a credential keeps its id; settings saying where it connects (here the Zendesk subdomain) changed
    after the approval would send the approved side effect to another account, so the step fails instead."""
    _, _, run = parked
    _approve(api, run)
    _zendesk_credential(owner, subdomain="elsewhere")

    _work(run)

    step = _step(_run(api, run))
    assert step["status"] == "failed"
    assert step["error"].startswith(
        "The Zendesk credential approved for this step (owner@example.com's) was changed since"
    )
    assert _calls(zendesk, ticket) == []


def test_the_approved_credentials_api_key_swapped_after_approval_fails_the_step_before_any_call(
    api, owner, zendesk, ticket, parked
):
    """Replacing a credential keeps its id, and may keep its settings: the API key alone swapped after the approval
    (here for another key the service also accepts) would run the approved side effect as another account."""
    _, _, run = parked
    _approve(api, run)
    recorded = TaskRun.objects.get(id=_step(run)["id"]).approved_step["credential"]
    assert len(recorded["secret_hmac"]) == 64 and API_TOKEN not in str(recorded)
    _zendesk_credential(owner, api_key="another-accounts-token")
    zendesk.api_token = "another-accounts-token"
    requests_before = len(zendesk.requests)

    _work(run)

    step = _step(_run(api, run))
    assert step["status"] == "failed"
    assert step["error"].startswith(
        "The Zendesk credential approved for this step (owner@example.com's) was changed since: its secret"
    )
    assert len(zendesk.requests) == requests_before
    assert _calls(zendesk, ticket) == []


def test_the_same_api_key_saved_again_after_approval_still_runs(api, owner, zendesk, ticket, parked):
    _, _, run = parked
    _approve(api, run)
    _zendesk_credential(owner)

    _work(run)

    assert _run(api, run)["status"] == "completed"
    assert _calls(zendesk, ticket) == [(False, "Refund the second charge.")]


def test_an_approval_recorded_before_secrets_were_bound_runs_as_before(api, owner, zendesk, ticket, parked):
    """An approval made before the record held an HMAC of the secret has none to compare: the step runs with the
    approved credential as it is now (its settings still checked)."""
    _, _, run = parked
    _approve(api, run)
    task_run = TaskRun.objects.get(id=_step(run)["id"])
    facts = {key: value for key, value in task_run.approved_step.items() if key != "fingerprint"}
    facts["credential"] = {key: value for key, value in facts["credential"].items() if key != "secret_hmac"}
    TaskRun.objects.filter(id=task_run.id).update(approved_step={**facts, "fingerprint": approved_steps._digest(facts)})
    _zendesk_credential(owner, api_key="a-new-token")
    zendesk.api_token = "a-new-token"

    _work(run)

    assert _run(api, run)["status"] == "completed", _step(_run(api, run))["error"]
    assert _calls(zendesk, ticket) == [(False, "Refund the second charge.")]


def test_the_secret_hmac_binds_api_key_and_basic_secrets_only_and_survives_a_secret_key_rotation():
    secrets = {"api_key": "k-1"}
    approved = approved_steps.credential_secret_hmac(auth_type="api_key", secrets=secrets)
    assert approved is not None and "k-1" not in approved
    assert approved_steps.credential_secret_matches(approved=approved, auth_type="api_key", secrets=secrets)
    assert not approved_steps.credential_secret_matches(
        approved=approved, auth_type="api_key", secrets={"api_key": "k-2"}
    )
    # OAuth2 tokens change on every refresh: they are not bound.
    assert approved_steps.credential_secret_hmac(auth_type="oauth2", secrets={"access_token": "a"}) is None
    assert approved_steps.credential_secret_matches(approved=None, auth_type="oauth2", secrets={"access_token": "b"})
    # A secret that could not be decrypted at approval matches nothing.
    unreadable = approved_steps.credential_secret_hmac(auth_type="basic", secrets=None)
    assert not approved_steps.credential_secret_matches(
        approved=unreadable, auth_type="basic", secrets={"password": "p"}
    )
    with override_settings(
        SECRET_KEY="a-new-secret-key-0123456789abcdefghijklmnop", SECRET_KEY_FALLBACKS=[settings.SECRET_KEY]
    ):
        assert approved_steps.credential_secret_matches(approved=approved, auth_type="api_key", secrets=secrets)
    with override_settings(SECRET_KEY="a-new-secret-key-0123456789abcdefghijklmnop", SECRET_KEY_FALLBACKS=[]):
        assert not approved_steps.credential_secret_matches(approved=approved, auth_type="api_key", secrets=secrets)


def test_the_step_runs_with_the_approved_credential_not_one_added_since(
    api, owner, organization, teammate, zendesk, ticket
):
    """The run's trigger user's own credential comes first; one they add after the approval is not the one approved."""
    _zendesk_credential(teammate, organization=organization.id)
    flow = api.post("/api/v1/flows/", _flow_body(NOTE, ticket), format="json").json()
    request = api.post("/api/v1/flow_requests/", {"request_instructions": "x"}, format="json").json()
    run = _execute(api, flow, request)
    _work(run)
    _approve(api, run)
    _zendesk_credential(owner, api_key="a-token-zendesk-refuses")

    _work(run)

    assert _step(_run(api, run))["approved_step"]["credential"]["owner_email"] == teammate.email
    assert _run(api, run)["status"] == "completed"
    assert _calls(zendesk, ticket) == [(False, "Refund the second charge.")]


def test_a_step_approved_without_a_credential_does_not_run_with_one_added_since(api, owner, zendesk, ticket):
    flow = api.post("/api/v1/flows/", _flow_body(NOTE, ticket), format="json").json()
    request = api.post("/api/v1/flow_requests/", {"request_instructions": "x"}, format="json").json()
    run = _execute(api, flow, request)
    _work(run)
    _approve(api, run)
    _zendesk_credential(owner)

    _work(run)

    assert _step(_run(api, run))["error"].startswith(
        "No usable Zendesk credential was there when the step was approved"
    )
    assert _calls(zendesk, ticket) == []

    # A retry asks for a new approval, which then fixes the credential there now.
    assert api.post(f"/api/v1/flow_runs/retry?flow_run_id={run['id']}").status_code == 200
    _work(run)
    assert _step(_run(api, run))["approved_step"] == {}
    _approve(api, run)
    _work(run)
    assert _calls(zendesk, ticket) == [(False, "Refund the second charge.")]


# --- References checked again when a run, a retry or a rerun starts ----------------------------------------------


def test_a_flow_whose_task_left_the_catalogue_cannot_start(api, ticket):
    flow = api.post("/api/v1/flows/", _flow_body(NOTE, ticket), format="json").json()
    request = api.post("/api/v1/flow_requests/", {"request_instructions": "x"}, format="json").json()
    TaskDefinition.objects.filter(task_name=NOTE).update(deleted_at=timezone.now())

    response = api.post(f"/api/v1/flows/execute?flow_id={flow['id']}&flow_request_id={request['id']}")

    assert response.status_code == 409
    assert response.json()["code"] == "task_definition_removed"
    assert not FlowRun.objects.exists()


def test_a_retry_or_rerun_checks_the_tasks_and_the_requests_organization_again(
    api, owner, organization, zendesk, ticket, parked
):
    _, request, run = parked
    api.put(f"/api/v1/flow_runs/reject?flow_run_id={run['id']}", {}, format="json")
    FlowRun.objects.filter(id=run["id"]).update(status=FlowRun.Status.FAILED)
    TaskRun.objects.filter(flow_run_id=run["id"]).update(status=TaskRun.Status.FAILED)
    TaskDefinition.objects.filter(task_name=NOTE).update(deleted_at=timezone.now())

    retried = api.post(f"/api/v1/flow_runs/retry?flow_run_id={run['id']}")
    rerun = api.post(f"/api/v1/flow_runs/rerun?flow_run_id={run['id']}")

    assert (retried.status_code, retried.json()["code"]) == (409, "task_definition_removed")
    assert (rerun.status_code, rerun.json()["code"]) == (409, "task_definition_removed")
    TaskDefinition.objects.filter(task_name=NOTE).update(deleted_at=None)
    other = shared_organization(owner)
    moved = api.put(
        "/api/v1/flow_requests/",
        {"id": request["id"], "request_instructions": "x", "organization": str(other.id)},
        format="json",
    )
    assert moved.status_code == 200
    for action in ("retry", "rerun"):
        response = api.post(f"/api/v1/flow_runs/{action}?flow_run_id={run['id']}")
        assert (response.status_code, response.json()["code"]) == (409, "organization_mismatch"), action
    assert FlowRun.objects.count() == 1
