"""The ``perplexity`` connector against a fake Perplexity API on 127.0.0.1."""

import uuid

import pytest
from django.test import override_settings

from apps.integrations.connectors import perplexity as connector
from apps.integrations.connectors.perplexity import ask
from apps.integrations.execution import CredentialAccess, TaskContext, TaskError, TransientTaskError
from tests.fakes.perplexity import FakePerplexity

API_KEY = "pplx-test-key"


@pytest.fixture
def perplexity():
    fake = FakePerplexity()
    with override_settings(NEENA_PERPLEXITY_BASE_URL=fake.base_url):
        yield fake
    fake.stop()


def _context(api_key: str = API_KEY) -> TaskContext:
    return TaskContext(
        organization_id=uuid.uuid4(),
        flow_run_id=uuid.uuid4(),
        flow_request_id=uuid.uuid4(),
        task_run_id=uuid.uuid4(),
        idempotency_key="step:0",
        integration_entity=None,
        credential=CredentialAccess(credential_id=uuid.uuid4(), secrets={"api_key": api_key}, config={}),
        time_limit_seconds=10,
    )


def test_ask_posts_the_question_and_returns_answer_and_citations(perplexity):
    perplexity.answer(
        " Acme raised $20M in March [1][2]. ",
        citations=["https://news.example.com/acme", "https://acme.example.com/blog"],
        search_results=[{"title": "ignored when citations are given", "url": "https://other.example.com"}],
    )

    outputs = ask(_context(), question="What is the latest news about Acme?")

    assert outputs == {
        "answer": "Acme raised $20M in March [1][2].",
        "citations": ["https://news.example.com/acme", "https://acme.example.com/blog"],
    }
    [received] = perplexity.requests
    assert (received.method, received.path) == ("POST", "/chat/completions")
    assert received.header("Authorization") == f"Bearer {API_KEY}"
    assert received.header("Content-Type") == "application/json"
    assert received.body == {
        "model": "sonar",
        "messages": [{"role": "user", "content": "What is the latest news about Acme?"}],
    }


def test_the_model_can_be_chosen_and_search_results_give_the_citations(perplexity):
    perplexity.answer(
        "It is 42.",
        search_results=[
            {"title": "A", "url": "https://a.example.com", "date": "2025-01-01"},
            {"title": "no url"},
            {"title": "B", "url": "https://b.example.com"},
        ],
    )

    outputs = ask(_context(), question="Meaning of life?", model="sonar-pro")

    assert outputs["citations"] == ["https://a.example.com", "https://b.example.com"]
    assert perplexity.requests[0].body["model"] == "sonar-pro"


def test_an_answer_without_sources_has_no_citations(perplexity):
    perplexity.answer("Hello.")

    assert ask(_context(), question="Say hello") == {"answer": "Hello.", "citations": []}


def test_rate_limits_and_server_errors_are_transient(perplexity):
    perplexity.answer("Too many requests", status=429, headers={"Retry-After": "5"})
    perplexity.answer("Bad gateway", status=502)

    with pytest.raises(TransientTaskError, match="429") as limited:
        ask(_context(), question="x")
    with pytest.raises(TransientTaskError, match="502"):
        ask(_context(), question="x")

    assert limited.value.retry_after == 5


@pytest.mark.parametrize("status", [400, 401])
def test_other_client_errors_are_permanent(perplexity, status):
    perplexity.answer("Invalid model 'sonar-xl'", status=status)

    with pytest.raises(TaskError, match=str(status)) as refused:
        ask(_context(), question="x", model="sonar-xl")

    assert not isinstance(refused.value, TransientTaskError)


def test_an_unexpected_answer_is_a_task_error(perplexity):
    perplexity.answer(raw=b'{"choices": []}')
    perplexity.answer(raw=b"<html>oops</html>")

    with pytest.raises(TaskError, match="unexpected shape"):
        ask(_context(), question="x")
    with pytest.raises(TaskError, match="unexpected shape"):
        ask(_context(), question="x")


def test_a_missing_key_fails_before_calling(perplexity):
    with pytest.raises(TaskError, match="no api_key"):
        ask(_context(api_key=""), question="x")

    assert perplexity.requests == []


def test_declaration():
    [task] = connector.CONNECTOR.tasks

    assert (connector.CONNECTOR.short_name, connector.CONNECTOR.auth_type) == ("perplexity", "api_key")
    assert connector.CONNECTOR.base_url_setting == "NEENA_PERPLEXITY_BASE_URL"
    assert (task.task_name, task.python_method_name, task.side_effect) == ("Ask Perplexity", "ask", False)
    assert [p.name for p in task.parameters] == ["question", "model"]
    assert [p.name for p in task.outputs] == ["answer", "citations"]
