"""``Idempotency-Key`` on the write endpoints: replays, reuse with another request, tenancy, expiry, failures."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from apps.accounts.models import Organization, User
from apps.flows.models import Flow, FlowRequest
from apps.idempotency.models import IdempotencyKey
from apps.runs.models import ApprovalDecision, FlowRun
from apps.runs.services.run_creation import flow_execute
from apps.runs.services.step_execution import task_run_execute
from tests.factories import add_member, shared_organization, task_definition
from tests.runs.flows import make_flow, make_request, step

pytestmark = pytest.mark.django_db

KEY = "8e03978e-40d5-43e8-bc93-6894a57f9324"


@pytest.fixture
def queued(monkeypatch):
    """The step jobs execute sends, once its transaction commits (recorded, not sent)."""
    sent = []
    monkeypatch.setattr("apps.runs.queueing.send_steps", lambda steps: sent.append(list(steps)))
    return sent


def _flow_and_request(owner):
    return make_flow(owner, [step(0, "Format Text", template="x")], []), make_request(owner)


def _execute(api, flow, flow_request, key=KEY):
    return api.post(
        f"/api/v1/flows/execute?flow_id={flow.id}&flow_request_id={flow_request.id}", HTTP_IDEMPOTENCY_KEY=key
    )


def _assert_reused(response):
    assert response.status_code == 422
    (item,) = response.json()["detail"]
    assert item["loc"] == ["header", "Idempotency-Key"]
    assert item["type"] == "idempotency_key_reused"


def _parked_run(owner):
    flow = make_flow(owner, [step(0, "Send Notification", 'Tell ann@example.com "hi"')], [])
    flow_run = flow_execute(user=owner, flow=flow, flow_request=make_request(owner))
    task_run_execute(task_run_id=flow_run.task_runs.get().id)
    return flow_run


# --- replays ---------------------------------------------------------------------------------------------------


def test_execute_repeated_with_the_key_answers_the_first_run_and_queues_once(
    api, owner, queued, django_capture_on_commit_callbacks
):
    flow, flow_request = _flow_and_request(owner)

    with django_capture_on_commit_callbacks(execute=True):
        first = _execute(api, flow, flow_request)
    with django_capture_on_commit_callbacks(execute=True):
        second = _execute(api, flow, flow_request)

    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert second["Idempotent-Replayed"] == "true"
    assert second["Content-Type"] == first["Content-Type"] == "application/json"
    assert "Idempotent-Replayed" not in first
    assert FlowRun.objects.count() == 1
    assert len(queued) == 1


def test_create_flow_request_repeated_creates_one(api):
    body = {"request_instructions": "Summarise the ticket.", "request_metadata": {"ticket": 7}}

    first = api.post("/api/v1/flow_requests/", body, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    second = api.post("/api/v1/flow_requests", body, format="json", HTTP_IDEMPOTENCY_KEY=KEY)  # without the slash

    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert FlowRequest.objects.count() == 1


def test_create_flow_repeated_creates_one(api):
    body = {
        "name": "Greet",
        "task_operations": [
            {"name": "Greet", "task_definition": str(task_definition("Format Text").id), "index": 0},
        ],
        "dependencies": [],
    }

    first = api.post("/api/v1/flows/", body, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    second = api.post("/api/v1/flows/", body, format="json", HTTP_IDEMPOTENCY_KEY=KEY)

    assert first.status_code == 200
    assert second.content == first.content
    assert Flow.objects.count() == 1


def test_the_same_key_for_a_create_in_another_organization_is_another_request(api, owner):
    team = shared_organization(owner)
    body = {"request_instructions": "Summarise the ticket."}

    personal = api.post("/api/v1/flow_requests/", body, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    elsewhere = api.post(
        "/api/v1/flow_requests/", body, format="json", HTTP_IDEMPOTENCY_KEY=KEY, HTTP_X_NEENA_ORGANIZATION=str(team.id)
    )

    assert personal.status_code == 200
    _assert_reused(elsewhere)
    assert not FlowRequest.objects.filter(organization=team).exists()


def test_a_replayed_update_does_not_overwrite_a_later_change(api, owner):
    flow_request = make_request(owner, "first")
    update = {"id": str(flow_request.id), "request_instructions": "second"}

    assert api.put("/api/v1/flow_requests/", update, format="json", HTTP_IDEMPOTENCY_KEY=KEY).status_code == 200
    api.put("/api/v1/flow_requests/", {"id": str(flow_request.id), "request_instructions": "third"}, format="json")
    replayed = api.put("/api/v1/flow_requests/", update, format="json", HTTP_IDEMPOTENCY_KEY=KEY)

    assert replayed.status_code == 200
    assert replayed.json()["request_instructions"] == "second"  # the first answer
    flow_request.refresh_from_db()
    assert flow_request.request_instructions == "third"


def test_a_repeated_approve_answers_the_approval_instead_of_409(api, owner, queued):
    flow_run = _parked_run(owner)
    path = f"/api/v1/flow_runs/approve?flow_run_id={flow_run.id}"

    first = api.put(path, {"comment": "ok"}, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    second = api.put(path, {"comment": "ok"}, format="json", HTTP_IDEMPOTENCY_KEY=KEY)

    assert first.status_code == 200
    assert second.status_code == 200
    assert second.content == first.content
    assert ApprovalDecision.objects.filter(flow_run=flow_run).count() == 1
    assert api.put(path, {"comment": "ok"}, format="json").status_code == 409  # without the key: a second decision


def test_rerun_and_flow_runs_create_repeated_start_one_run_each(api, owner, queued):
    flow, flow_request = _flow_and_request(owner)
    body = {"flow": str(flow.id), "flow_request": str(flow_request.id)}

    created = api.post("/api/v1/flow_runs/", body, format="json", HTTP_IDEMPOTENCY_KEY="create")
    assert api.post("/api/v1/flow_runs/", body, format="json", HTTP_IDEMPOTENCY_KEY="create").content == created.content
    rerun_path = f"/api/v1/flow_runs/rerun?flow_run_id={created.json()['id']}"
    rerun = api.post(rerun_path, HTTP_IDEMPOTENCY_KEY="rerun")
    assert api.post(rerun_path, HTTP_IDEMPOTENCY_KEY="rerun").content == rerun.content

    assert FlowRun.objects.count() == 2


def test_generate_repeated_with_post_saves_one_flow_and_get_ignores_the_header(api, owner):
    flow_request = make_request(owner, 'Format the text "hello"')
    path = f"/api/v1/flows/generate?flow_request_id={flow_request.id}"

    first = api.post(path, HTTP_IDEMPOTENCY_KEY=KEY)
    second = api.post(path, HTTP_IDEMPOTENCY_KEY=KEY)

    assert first.status_code == 200, first.json()
    assert second.content == first.content
    assert Flow.objects.count() == 1
    assert api.get(path, HTTP_IDEMPOTENCY_KEY="get").status_code == 200
    assert Flow.objects.count() == 2
    assert not IdempotencyKey.objects.filter(key="get").exists()


def test_the_quoted_form_of_the_draft_names_the_same_key(api, owner):
    flow, flow_request = _flow_and_request(owner)

    first = _execute(api, flow, flow_request, key=KEY)
    second = _execute(api, flow, flow_request, key=f'"{KEY}"')

    assert second.content == first.content
    assert FlowRun.objects.count() == 1


def test_without_the_header_nothing_changes(api, owner):
    flow, flow_request = _flow_and_request(owner)

    api.post(f"/api/v1/flows/execute?flow_id={flow.id}&flow_request_id={flow_request.id}")
    api.post(f"/api/v1/flows/execute?flow_id={flow.id}&flow_request_id={flow_request.id}")

    assert FlowRun.objects.count() == 2
    assert not IdempotencyKey.objects.exists()


# --- the same key for another request ----------------------------------------------------------------------------


def test_the_same_key_with_another_body_is_422_and_creates_nothing(api):
    api.post("/api/v1/flow_requests/", {"request_instructions": "one"}, format="json", HTTP_IDEMPOTENCY_KEY=KEY)

    response = api.post(
        "/api/v1/flow_requests/", {"request_instructions": "two"}, format="json", HTTP_IDEMPOTENCY_KEY=KEY
    )

    _assert_reused(response)
    assert list(FlowRequest.objects.values_list("request_instructions", flat=True)) == ["one"]


def test_the_same_key_on_another_endpoint_or_query_is_422(api, owner):
    flow, flow_request = _flow_and_request(owner)
    other_request = make_request(owner)
    _execute(api, flow, flow_request)

    _assert_reused(_execute(api, flow, other_request))
    _assert_reused(
        api.post("/api/v1/flow_requests/", {"request_instructions": "x"}, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    )
    assert FlowRun.objects.count() == 1


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "clé", "tab\there", "new\x7fline"])
def test_a_malformed_key_is_422(api, key):
    response = api.post(
        "/api/v1/flow_requests/", {"request_instructions": "x"}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert response.json()["detail"][0]["type"] == "idempotency_key_invalid"
    assert not FlowRequest.objects.exists()


def test_a_key_of_255_printable_characters_is_accepted(api):
    key = "".join(chr(32 + index % 95) for index in range(255)).strip() + "~"
    response = api.post(
        "/api/v1/flow_requests/", {"request_instructions": "x"}, format="json", HTTP_IDEMPOTENCY_KEY=key[-255:]
    )

    assert response.status_code == 200
    assert IdempotencyKey.objects.get().key == key[-255:]


# --- tenancy -----------------------------------------------------------------------------------------------------


def test_another_organization_uses_the_same_key_independently(api, owner, outsider, outsider_api):
    flow, flow_request = _flow_and_request(owner)
    their_flow, their_request = _flow_and_request(outsider)

    mine = _execute(api, flow, flow_request)
    theirs = _execute(outsider_api, their_flow, their_request)

    assert mine.status_code == theirs.status_code == 200
    assert "Idempotent-Replayed" not in theirs
    assert theirs.json()["id"] != mine.json()["id"]
    assert FlowRun.objects.count() == 2
    assert IdempotencyKey.objects.count() == 2


def test_an_outsider_guessing_the_key_of_a_request_gets_no_stored_answer(api, owner, outsider_api):
    flow, flow_request = _flow_and_request(owner)
    mine = _execute(api, flow, flow_request)

    guessed = _execute(outsider_api, flow, flow_request)  # the very same request, key included

    assert guessed.status_code == 404
    assert str(mine.json()["id"]) not in guessed.content.decode()
    assert FlowRun.objects.count() == 1


def test_another_user_of_the_same_organization_cannot_replay_a_key(make_client):
    organization = Organization.objects.create(name="Team")
    first_user, second_user = (User.objects.create_user(email=f"{name}@example.com") for name in ("ann", "bob"))
    for user in (first_user, second_user):
        add_member(user, organization)
    body = {"request_instructions": "x", "organization": str(organization.id)}

    first = make_client(first_user).post("/api/v1/flow_requests/", body, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    second = make_client(second_user).post("/api/v1/flow_requests/", body, format="json", HTTP_IDEMPOTENCY_KEY=KEY)

    assert first.status_code == 200
    _assert_reused(second)
    assert str(first.json()["id"]) not in second.content.decode()


def test_a_token_without_the_scope_gets_403_not_the_replay(api, owner, make_client):
    flow, flow_request = _flow_and_request(owner)
    _execute(api, flow, flow_request)

    assert _execute(make_client(owner, scopes=("read",)), flow, flow_request).status_code == 403


# --- lifetime, failures, concurrency -----------------------------------------------------------------------------


def test_an_expired_key_is_a_new_request(api, owner):
    flow, flow_request = _flow_and_request(owner)
    first = _execute(api, flow, flow_request)
    IdempotencyKey.objects.update(
        created_date=timezone.now() - timedelta(hours=settings.NEENA_IDEMPOTENCY_TTL_HOURS, seconds=1)
    )

    second = _execute(api, flow, flow_request)
    third = _execute(api, flow, flow_request)

    assert second.status_code == 200
    assert "Idempotent-Replayed" not in second
    assert second.json()["id"] != first.json()["id"]
    assert third.content == second.content  # the key now stands for the second request
    assert FlowRun.objects.count() == 2


def test_an_error_is_not_kept_and_the_key_can_be_retried(api):
    refused = api.post("/api/v1/flow_requests/", {"request_metadata": 5}, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    assert refused.status_code == 422
    assert not IdempotencyKey.objects.exists()

    fixed = api.post("/api/v1/flow_requests/", {"request_instructions": "x"}, format="json", HTTP_IDEMPOTENCY_KEY=KEY)

    assert fixed.status_code == 200
    assert FlowRequest.objects.count() == 1


def test_a_conflict_is_not_kept_either(api, owner):
    flow_run = _parked_run(owner)
    path = f"/api/v1/flow_runs/retry?flow_run_id={flow_run.id}"

    assert api.post(path, HTTP_IDEMPOTENCY_KEY=KEY).json()["code"] == "not_failed"
    FlowRun.objects.filter(id=flow_run.id).update(status=FlowRun.Status.FAILED)

    assert api.post(path, HTTP_IDEMPOTENCY_KEY=KEY).status_code == 200


def test_a_crash_releases_the_key_and_keeps_nothing(api, owner, monkeypatch):
    flow, flow_request = _flow_and_request(owner)

    def crash(**kwargs):
        flow_execute(**kwargs)
        raise RuntimeError("bug after the run was created")

    monkeypatch.setattr("apps.flows.views.flow_execute", crash)
    api.raise_request_exception = False
    response = _execute(api, flow, flow_request)

    assert response.status_code == 500
    assert not IdempotencyKey.objects.exists()
    assert not FlowRun.objects.exists()  # the run was rolled back with the request


def test_a_key_whose_request_is_running_answers_409(api, owner):
    flow, flow_request = _flow_and_request(owner)
    _execute(api, flow, flow_request)
    IdempotencyKey.objects.update(response_status=None, response_body="")  # as while the first request runs

    response = _execute(api, flow, flow_request)

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_in_progress"
    assert FlowRun.objects.count() == 1


def test_the_claim_of_a_request_that_died_is_taken_over_after_the_claim_timeout(api, owner):
    flow, flow_request = _flow_and_request(owner)
    _execute(api, flow, flow_request)
    FlowRun.objects.all().delete()  # the process died before committing
    IdempotencyKey.objects.update(
        response_status=None,
        response_body="",
        created_date=timezone.now() - timedelta(seconds=settings.NEENA_IDEMPOTENCY_CLAIM_SECONDS + 1),
    )

    response = _execute(api, flow, flow_request)

    assert response.status_code == 200
    assert "Idempotent-Replayed" not in response
    assert FlowRun.objects.count() == 1


def test_a_request_whose_claim_was_taken_over_meanwhile_rolls_back(api, owner, monkeypatch):
    """It ran past the claim timeout and a retry took the key (the services' tests show storing then fails): only one
    of the two may act, so its run is rolled back."""
    flow, flow_request = _flow_and_request(owner)
    monkeypatch.setattr("apps.idempotency.decorators.idempotency_key_complete", lambda **kwargs: False)

    response = _execute(api, flow, flow_request)

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_in_progress"
    assert not FlowRun.objects.exists()


def test_a_user_in_no_organization_is_answered_as_without_the_header(make_client):
    user = User.objects.create_user(email="nobody@example.com")

    response = make_client(user).post(
        "/api/v1/flow_requests/", {"request_instructions": "x"}, format="json", HTTP_IDEMPOTENCY_KEY=KEY
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "organization"]
    assert not IdempotencyKey.objects.exists()
