"""The ``jira`` connector against a fake Jira Cloud on 127.0.0.1: the exact requests REST API v3 expects (basic auth
with email and API token, Atlassian Document Format texts, transitions by id), the outputs, the error mapping, the
site taken from the credential, and one step through the engine."""

import base64

import pytest
from django.test import override_settings

from apps.credentials.services.credentials import credential_upsert
from apps.integrations.connectors.jira import CONNECTOR, comment_on_issue, create_issue, transition_issue
from apps.integrations.execution import TaskError, TransientTaskError
from apps.integrations.models import TaskDefinition
from apps.runs.models import FlowRun, TaskRun
from tests.fakes.jira import API_TOKEN, EMAIL, FakeJira, document_text
from tests.integrations.connectors.steps import credential_context, run_one_step

CONTEXT = credential_context({"api_key": API_TOKEN}, {"email": EMAIL, "site": "acme"})
AUTHORIZATION = "Basic " + base64.b64encode(f"{EMAIL}:{API_TOKEN}".encode()).decode()


@pytest.fixture
def jira():
    fake = FakeJira()
    fake.add_project("OPS")
    try:
        with override_settings(NEENA_JIRA_BASE_URL=fake.base_url):
            yield fake
    finally:
        fake.stop()


# --- Tasks ------------------------------------------------------------------------------------------------------


def test_create_issue_posts_the_fields_with_an_adf_description(jira):
    outputs = create_issue(
        CONTEXT,
        project_key="OPS",
        summary="Printer on fire",
        description="It smokes.\nA lot.\n\nPlease hurry.",
        issue_type="Bug",
    )

    (received,) = jira.requests
    assert (received.method, received.path, received.query) == ("POST", "/rest/api/3/issue", {})
    assert received.headers["authorization"] == AUTHORIZATION
    assert received.headers["content-type"] == "application/json"
    assert received.headers["accept"] == "application/json"
    assert received.body == {
        "fields": {
            "project": {"key": "OPS"},
            "summary": "Printer on fire",
            "issuetype": {"name": "Bug"},
            "description": {
                "type": "doc",
                "version": 1,
                "content": [
                    {
                        "type": "paragraph",
                        "content": [
                            {"type": "text", "text": "It smokes."},
                            {"type": "hardBreak"},
                            {"type": "text", "text": "A lot."},
                        ],
                    },
                    {"type": "paragraph", "content": [{"type": "text", "text": "Please hurry."}]},
                ],
            },
        }
    }
    assert outputs == {"issue_key": "OPS-1", "url": f"{jira.base_url}/browse/OPS-1"}
    assert jira.issues["OPS-1"]["fields"]["issuetype"] == {"name": "Bug"}


def test_create_issue_defaults_to_a_task_without_description(jira):
    create_issue(CONTEXT, project_key="OPS", summary="Rotate keys")

    assert jira.requests[0].body == {
        "fields": {"project": {"key": "OPS"}, "summary": "Rotate keys", "issuetype": {"name": "Task"}}
    }


def test_comment_on_issue_posts_an_adf_body(jira):
    key = jira.add_issue("OPS", "Printer on fire")

    outputs = comment_on_issue(CONTEXT, issue_key=key, body="Fire brigade called.\n\nStand by.")

    (received,) = jira.requests
    assert (received.method, received.path) == ("POST", "/rest/api/3/issue/OPS-1/comment")
    assert received.headers["authorization"] == AUTHORIZATION
    assert set(received.body) == {"body"}
    assert document_text(received.body["body"]) == "Fire brigade called.\n\nStand by."
    (comment,) = jira.comments[key]
    assert outputs == {"comment_id": comment["id"]}


@pytest.mark.parametrize(
    ("asked", "transition_id", "status"), [("done", "31", "Done"), ("Start Progress", "21", "In Progress")]
)
def test_transition_finds_the_transition_by_status_or_name_then_posts_its_id(jira, asked, transition_id, status):
    key = jira.add_issue("OPS", "Printer on fire")

    outputs = transition_issue(CONTEXT, issue_key=key, transition=asked)

    listing, move = jira.requests
    assert (listing.method, listing.path, listing.query) == ("GET", "/rest/api/3/issue/OPS-1/transitions", {})
    assert listing.headers["authorization"] == AUTHORIZATION
    assert (move.method, move.path) == ("POST", "/rest/api/3/issue/OPS-1/transitions")
    assert move.body == {"transition": {"id": transition_id}}
    assert outputs == {"issue_key": "OPS-1", "status": status}
    assert jira.status_of(key) == status


def test_transition_to_the_current_status_succeeds_without_moving(jira):
    key = jira.add_issue("OPS", "Printer on fire", status="Done")

    outputs = transition_issue(CONTEXT, issue_key=key, transition="Done")

    assert [(r.method, r.path, r.query) for r in jira.requests] == [
        ("GET", "/rest/api/3/issue/OPS-1/transitions", {}),
        ("GET", "/rest/api/3/issue/OPS-1", {"fields": ["status"]}),
    ]
    assert outputs == {"issue_key": "OPS-1", "status": "Done"}


def test_an_unavailable_transition_lists_the_available_ones(jira):
    key = jira.add_issue("OPS", "Printer on fire", status="In Progress")

    with pytest.raises(TaskError) as error:
        transition_issue(CONTEXT, issue_key=key, transition="Archived")

    assert str(error.value) == (
        "Jira issue OPS-1 (status 'In Progress') has no transition 'Archived'; "
        "available: 'Reopen' (to To Do), 'Close' (to Done)."
    )
    assert jira.status_of(key) == "In Progress"
    assert all(request.method == "GET" for request in jira.requests)


@pytest.mark.parametrize("key", ["OPS", "OPS-1/../../x", "ops 1", ""])
def test_a_malformed_issue_key_fails_before_calling(jira, key):
    with pytest.raises(TaskError, match="is not a Jira issue key"):
        comment_on_issue(CONTEXT, issue_key=key, body="x")
    with pytest.raises(TaskError, match="is not a Jira issue key"):
        transition_issue(CONTEXT, issue_key=key, transition="Done")
    assert jira.requests == []


def test_bad_inputs_fail_before_calling(jira):
    with pytest.raises(TaskError, match="is not a Jira project key"):
        create_issue(CONTEXT, project_key="OPS/../x", summary="x")
    with pytest.raises(TaskError, match="needs a summary"):
        create_issue(CONTEXT, project_key="OPS", summary=" ")
    with pytest.raises(TaskError, match="needs a body"):
        comment_on_issue(CONTEXT, issue_key="OPS-1", body="")
    assert jira.requests == []


# --- Site and credential ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("site", ["acme", "acme.atlassian.net", "https://ACME.atlassian.net/"])
def test_without_the_setting_the_site_comes_from_the_credential(site, monkeypatch):
    called = []

    def fake_request(method, url, **kwargs):
        called.append((method, url, kwargs["auth"], kwargs["trusted"]))
        raise TaskError("stop here")

    monkeypatch.setattr("apps.integrations.connectors.jira.egress.request", fake_request)
    context = credential_context({"api_key": API_TOKEN}, {"email": EMAIL, "site": site})

    with override_settings(NEENA_JIRA_BASE_URL=""), pytest.raises(TaskError, match="stop here"):
        comment_on_issue(context, issue_key="OPS-1", body="x")

    # The user's site is not trusted: the egress guard lets it reach public addresses only.
    assert called == [("POST", "https://acme.atlassian.net/rest/api/3/issue/OPS-1/comment", (EMAIL, API_TOKEN), False)]


@pytest.mark.parametrize("site", ["evil.com/x?", "127.0.0.1:8000", "acme.example.com", "a_b"])
def test_a_site_that_is_not_an_atlassian_cloud_name_is_refused(site):
    context = credential_context({"api_key": API_TOKEN}, {"email": EMAIL, "site": site})

    with override_settings(NEENA_JIRA_BASE_URL=""), pytest.raises(TaskError, match="is not a Jira Cloud site"):
        comment_on_issue(context, issue_key="OPS-1", body="x")


def test_a_credential_without_email_token_or_site_fails_before_calling(jira):
    with pytest.raises(TaskError, match="needs the API token"):
        create_issue(credential_context({"api_key": API_TOKEN}, {"site": "acme"}), project_key="OPS", summary="x")
    with pytest.raises(TaskError, match="needs the API token"):
        create_issue(credential_context({}, {"email": EMAIL, "site": "acme"}), project_key="OPS", summary="x")
    with override_settings(NEENA_JIRA_BASE_URL=""), pytest.raises(TaskError, match="names no site"):
        create_issue(credential_context({"api_key": API_TOKEN}, {"email": EMAIL}), project_key="OPS", summary="x")
    assert jira.requests == []


# --- Errors ---------------------------------------------------------------------------------------------------------


def test_a_rate_limit_is_retried_after_retry_after(jira):
    jira.fail(429, "Rate limit exceeded.", headers={"Retry-After": "12", "X-RateLimit-Remaining": "0"})

    with pytest.raises(TransientTaskError, match=r"^Jira is rate limiting \(429\): Rate limit exceeded\.$") as error:
        create_issue(CONTEXT, project_key="OPS", summary="x")

    assert error.value.retry_after == 12


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried(jira, status):
    jira.fail(status, "Internal server error")

    with pytest.raises(TransientTaskError) as error:
        comment_on_issue(CONTEXT, issue_key="OPS-1", body="x")

    assert str(error.value) == f"Jira answered {status}: Internal server error"


def test_field_errors_fail_with_jiras_messages(jira):
    with pytest.raises(TaskError) as error:
        create_issue(CONTEXT, project_key="NOPE", summary="x", issue_type="Saga")

    assert not isinstance(error.value, TransientTaskError)
    assert str(error.value) == (
        "Jira refused the request (400): project: valid project is required; issuetype: Specify a valid issue type"
    )


def test_an_unknown_issue_is_a_404_task_error(jira):
    with pytest.raises(TaskError) as error:
        transition_issue(CONTEXT, issue_key="OPS-99", transition="Done")

    assert str(error.value) == (
        "Jira refused the request (404): Issue does not exist or you do not have permission to see it."
    )


def test_a_wrong_token_is_a_401_task_error(jira):
    context = credential_context({"api_key": "wrong"}, {"email": EMAIL, "site": "acme"})

    with pytest.raises(TaskError) as error:
        create_issue(context, project_key="OPS", summary="x")

    assert not isinstance(error.value, TransientTaskError)
    assert str(error.value) == "Jira refused the request (401): Client must be authenticated to access this resource."


def test_a_refused_transition_post_is_a_task_error(jira):
    key = jira.add_issue("OPS", "Printer on fire")
    jira.fail(400, "Transition id '31' is not valid for this issue.", when=f"POST /rest/api/3/issue/{key}/transitions")

    with pytest.raises(TaskError, match="Transition id '31' is not valid"):
        transition_issue(CONTEXT, issue_key=key, transition="Done")


# --- Catalogue and engine -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_jira_tasks_are_in_the_catalogue():
    found = {
        task.task_name: (task.python_method_name, task.parameter_names, task.side_effect)
        for task in TaskDefinition.objects.filter(integration__short_name="jira", deleted_at__isnull=True)
    }

    assert found == {
        "Create Jira Issue": ("create_issue", ["project_key", "summary", "description", "issue_type"], True),
        "Comment on Jira Issue": ("comment_on_issue", ["issue_key", "body"], True),
        "Transition Jira Issue": ("transition_issue", ["issue_key", "transition"], True),
    }
    assert (CONNECTOR.auth_type, CONNECTOR.base_url_setting) == ("basic", "NEENA_JIRA_BASE_URL")


@pytest.mark.django_db
def test_a_transition_step_runs_through_the_engine(jira, owner, organization, monkeypatch):
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: None)
    credential_upsert(
        user=owner, integration_short_name="jira", api_key=API_TOKEN, config={"email": EMAIL, "site": "acme"}
    )
    key = jira.add_issue("OPS", "Printer on fire")

    task_run = run_one_step(owner, organization, "Transition Jira Issue", issue_key=key, transition="Done")

    assert task_run.status == TaskRun.Status.COMPLETED, task_run.error
    assert task_run.flow_run.status == FlowRun.Status.COMPLETED
    assert [(r.method, r.path) for r in jira.requests] == [
        ("GET", "/rest/api/3/issue/OPS-1/transitions"),
        ("POST", "/rest/api/3/issue/OPS-1/transitions"),
    ]
    assert all(r.headers["authorization"] == AUTHORIZATION for r in jira.requests)
    assert task_run.result == {"issue_key": "OPS-1", "status": "Done"}
    assert jira.status_of(key) == "Done"
