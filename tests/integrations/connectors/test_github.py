"""The ``github`` connector against a fake GitHub on 127.0.0.1: the exact requests the real API expects (bearer token,
API version and media type headers, JSON bodies), the outputs, the error mapping with GitHub's rate limits, and one
step through the engine."""

import time

import pytest
from django.test import override_settings

from apps.integrations.connectors.github import add_labels, comment_on_issue, create_issue
from apps.integrations.execution import TaskError, TransientTaskError
from apps.runs.models import FlowRun, TaskRun
from tests.fakes.github import TOKEN, FakeGitHub
from tests.integrations.connectors.steps import credential_context, oauth2_credential_store, run_one_step

CONTEXT = credential_context({"access_token": TOKEN})
HEADERS = {
    "authorization": f"Bearer {TOKEN}",
    "accept": "application/vnd.github+json",
    "x-github-api-version": "2022-11-28",
    "content-type": "application/json",
}


@pytest.fixture
def github():
    fake = FakeGitHub()
    fake.add_repository("acme/web")
    try:
        with override_settings(NEENA_GITHUB_BASE_URL=fake.base_url):
            yield fake
    finally:
        fake.stop()


def _sent_headers(request):
    return {name: request.headers.get(name) for name in HEADERS}


# --- Tasks ------------------------------------------------------------------------------------------------------


def test_create_issue_posts_title_body_and_labels(github):
    outputs = create_issue(
        CONTEXT, repo="acme/web", title="Login broken", body="Steps:\n1. log in", labels=["bug", "urgent"]
    )

    (received,) = github.requests
    assert (received.method, received.path, received.query) == ("POST", "/repos/acme/web/issues", {})
    assert _sent_headers(received) == HEADERS
    assert received.body == {"title": "Login broken", "body": "Steps:\n1. log in", "labels": ["bug", "urgent"]}
    issue = github.issues[("acme/web", 1)]
    assert outputs == {"issue_number": 1, "html_url": "https://github.com/acme/web/issues/1"}
    assert [label["name"] for label in issue["labels"]] == ["bug", "urgent"]


def test_create_issue_sends_only_the_title_when_nothing_else_is_given(github):
    github.add_issue("acme/web", "An earlier one")

    outputs = create_issue(CONTEXT, repo="acme/web", title="Crash on save", body="", labels=[])

    assert github.requests[0].body == {"title": "Crash on save"}
    assert outputs == {"issue_number": 2, "html_url": "https://github.com/acme/web/issues/2"}


def test_comment_on_issue_posts_the_body(github):
    github.add_issue("acme/web", "Login broken")

    outputs = comment_on_issue(CONTEXT, repo="acme/web", issue_number=1, body="Looking into it.")

    (received,) = github.requests
    assert (received.method, received.path) == ("POST", "/repos/acme/web/issues/1/comments")
    assert _sent_headers(received) == HEADERS
    assert received.body == {"body": "Looking into it."}
    (comment,) = github.comments
    assert outputs == {"comment_id": comment["id"], "html_url": comment["html_url"]}
    assert comment["html_url"] == f"https://github.com/acme/web/issues/1#issuecomment-{comment['id']}"


def test_add_labels_posts_the_labels_and_returns_all_of_the_issues(github):
    github.add_issue("acme/web", "Login broken", labels=("bug",))

    outputs = add_labels(CONTEXT, repo="acme/web", issue_number=1, labels=["needs-triage", "bug"])

    (received,) = github.requests
    assert (received.method, received.path) == ("POST", "/repos/acme/web/issues/1/labels")
    assert _sent_headers(received) == HEADERS
    assert received.body == {"labels": ["needs-triage", "bug"]}
    assert outputs == {"labels": ["bug", "needs-triage"]}


@pytest.mark.parametrize(
    "repo", ["acme", "acme/web/extra", "../acme/web", "acme/..", "https://github.com/acme/web", ""]
)
def test_a_repository_not_as_owner_slash_name_fails_before_calling(github, repo):
    with pytest.raises(TaskError, match="is not a repository as 'owner/name'"):
        create_issue(CONTEXT, repo=repo, title="x")
    with pytest.raises(TaskError, match="is not a repository as 'owner/name'"):
        comment_on_issue(CONTEXT, repo=repo, issue_number=1, body="x")
    assert github.requests == []


def test_empty_inputs_fail_before_calling(github):
    with pytest.raises(TaskError, match="needs a title"):
        create_issue(CONTEXT, repo="acme/web", title="  ")
    with pytest.raises(TaskError, match="needs a body"):
        comment_on_issue(CONTEXT, repo="acme/web", issue_number=1, body="")
    with pytest.raises(TaskError, match="at least one label"):
        add_labels(CONTEXT, repo="acme/web", issue_number=1, labels=[" "])
    with pytest.raises(TaskError, match="is not an issue number"):
        add_labels(CONTEXT, repo="acme/web", issue_number=0, labels=["bug"])
    assert github.requests == []


# --- Errors ---------------------------------------------------------------------------------------------------------


def test_the_primary_rate_limit_waits_until_the_reset(github):
    github.rate_limit(status=403, reset_in=1800)

    with pytest.raises(TransientTaskError, match=r"rate limiting \(403\): API rate limit exceeded") as error:
        create_issue(CONTEXT, repo="acme/web", title="x")

    assert 1790 <= error.value.retry_after <= 1800


def test_the_primary_rate_limit_prefers_retry_after(github):
    github.rate_limit(status=429, reset_in=1800, retry_after=30)

    with pytest.raises(TransientTaskError) as error:
        create_issue(CONTEXT, repo="acme/web", title="x")

    assert error.value.retry_after == 30


def test_a_secondary_rate_limit_waits_as_told_or_a_minute(github):
    github.secondary_rate_limit(retry_after=90)
    github.secondary_rate_limit(retry_after=None)

    for expected in (90, 60):
        with pytest.raises(TransientTaskError, match="secondary rate limit") as error:
            create_issue(CONTEXT, repo="acme/web", title="x")
        assert error.value.retry_after == expected


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried(github, status):
    github.fail(status)

    with pytest.raises(TransientTaskError, match=str(status)):
        create_issue(CONTEXT, repo="acme/web", title="x")


def test_a_refusal_with_requests_left_is_a_task_error(github):
    github.fail(403, "Resource not accessible by integration")

    with pytest.raises(TaskError) as error:
        create_issue(CONTEXT, repo="acme/web", title="x")

    assert not isinstance(error.value, TransientTaskError)
    assert str(error.value) == "GitHub refused the request (403): Resource not accessible by integration"


def test_an_unknown_repository_or_issue_is_a_404_task_error(github):
    with pytest.raises(TaskError, match=r"\(404\): Not Found \(does the repository or issue exist") as error:
        create_issue(CONTEXT, repo="acme/private", title="x")
    assert not isinstance(error.value, TransientTaskError)

    with pytest.raises(TaskError, match=r"\(404\): Not Found"):
        comment_on_issue(CONTEXT, repo="acme/web", issue_number=99, body="x")


def test_a_validation_failure_names_the_field(github):
    github.fail(422, "Validation Failed", errors=[{"resource": "Issue", "code": "invalid", "field": "labels"}])

    with pytest.raises(TaskError) as error:
        create_issue(CONTEXT, repo="acme/web", title="x", labels=["bug"])

    assert str(error.value) == "GitHub refused the request (422): Validation Failed (Issue.labels invalid)"


def test_a_bad_token_is_a_task_error(github):
    with pytest.raises(TaskError, match=r"\(401\): Bad credentials") as error:
        create_issue(credential_context({"access_token": "expired"}), repo="acme/web", title="x")
    assert not isinstance(error.value, TransientTaskError)

    with pytest.raises(TaskError, match="no access token"):
        create_issue(credential_context({}), repo="acme/web", title="x")


def test_a_timeout_is_retried(github, monkeypatch):
    monkeypatch.setattr("apps.integrations.connectors.github.DEFAULT_TIMEOUT_SECONDS", 0.2)
    github.fail(500, delay=1.0)

    started = time.monotonic()
    with pytest.raises(TransientTaskError, match="GitHub could not be reached: ReadTimeout"):
        create_issue(CONTEXT, repo="acme/web", title="x")
    assert time.monotonic() - started < 1.0


# --- Through the engine ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_create_issue_step_runs_through_the_engine(github, owner, organization, monkeypatch):
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: None)
    oauth2_credential_store(owner, organization, "github", {"access_token": TOKEN})

    task_run = run_one_step(
        owner, organization, "Create GitHub Issue", repo="acme/web", title="Login broken", labels=["bug"]
    )

    assert task_run.status == TaskRun.Status.COMPLETED, task_run.error
    assert task_run.flow_run.status == FlowRun.Status.COMPLETED
    (received,) = github.requests
    assert (received.method, received.path) == ("POST", "/repos/acme/web/issues")
    assert received.headers["authorization"] == f"Bearer {TOKEN}"
    assert received.body == {"title": "Login broken", "labels": ["bug"]}
    assert task_run.result == {"issue_number": 1, "html_url": "https://github.com/acme/web/issues/1"}
