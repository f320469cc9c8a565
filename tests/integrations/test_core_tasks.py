"""The six core tasks, called as the engine calls them."""

import uuid

import pytest

from apps.integrations.connectors import core
from apps.integrations.execution import TaskContext, TaskError
from apps.integrations.models import Notification
from apps.runs.models import FlowResult
from tests.factories import FlowRunFactory


def _context(organization_id=None, flow_run_id=None, key="step-1:0"):
    return TaskContext(
        organization_id=organization_id or uuid.uuid4(),
        flow_run_id=flow_run_id or uuid.uuid4(),
        flow_request_id=uuid.uuid4(),
        task_run_id=uuid.uuid4(),
        idempotency_key=key,
        integration_entity=None,
    )


def test_format_text_substitutes_plainly():
    result = core.format_text(_context(), template="Hi {name}, {{literal}} {n}", values={"name": "Ann", "n": 3})

    assert result == {"text": "Hi Ann, {literal} 3"}


def test_format_text_never_evaluates_field_expressions():
    result = core.format_text(_context(), template="{name.__class__} {0} {name!r}", values={"name": "x"})

    assert result == {"text": "{name.__class__} {0} {name!r}"}


def test_format_text_names_missing_values():
    with pytest.raises(TaskError, match=r"\{customer\}"):
        core.format_text(_context(), template="Hi {customer}", values={})


def test_extract_field_follows_keys_and_indices():
    data = {"items": [{"id": "a"}, {"id": "b"}]}

    assert core.extract_field(_context(), data=data, path="items.1.id") == {"value": "b"}
    assert core.extract_field(_context(), data=data, path="items.-1") == {"value": {"id": "b"}}
    with pytest.raises(TaskError, match="nothing at 'price'"):
        core.extract_field(_context(), data=data, path="items.0.price")


def test_classify_text_scores_names_and_keywords():
    text = "I was charged twice on my invoice, please refund the payment."
    labels = ["bug", "billing", "question"]

    result = core.classify_text(
        _context(), text=text, labels=labels, keywords={"billing": ["invoice", "refund", "charged"]}
    )
    assert result == {"label": "billing"}
    assert core.classify_text(_context(), text="The app crashes: a bug.", labels=labels, keywords={}) == {
        "label": "bug"
    }
    with pytest.raises(TaskError):
        core.classify_text(_context(), text="x", labels=[], keywords={})


def test_summarize_text_keeps_the_most_informative_sentences_in_order():
    text = (
        "The payment service failed at noon. Customers could not pay for orders. "
        "The weather was nice. Engineers restarted the payment service and payments recovered."
    )

    summary = core.summarize_text(_context(), text=text, max_sentences=2)["summary"]

    assert summary.count(".") == 2
    assert "weather" not in summary
    assert summary.startswith("The payment service failed at noon.")


@pytest.mark.django_db
def test_send_notification_records_once_per_idempotency_key(organization):
    context = _context(organization_id=organization.id, flow_run_id=None, key="task-run-7:0")
    context = TaskContext(**{**context.__dict__, "flow_run_id": FlowRunFactory(organization=organization).id})

    first = core.send_notification(context, recipient="ann@example.com", message="Hello")
    again = core.send_notification(context, recipient="ann@example.com", message="Hello")

    assert first == again
    notification = Notification.objects.get()
    assert (notification.recipient, notification.message, notification.organization) == (
        "ann@example.com",
        "Hello",
        organization,
    )


@pytest.mark.django_db
def test_set_flow_result_records_a_result_for_the_runs_entity(organization):
    run = FlowRunFactory(organization=organization)
    run.flow_request.request_metadata = [{"integration_short_name": "zendesk", "integration_entity_id": 991}]
    run.flow_request.save()

    assert core.set_flow_result(_context(organization.id, run.id), body="Replied.") == {"body": "Replied."}

    result = FlowResult.objects.get()
    assert (result.integration_short_name, result.integration_entity_id, result.body) == ("zendesk", "991", "Replied.")


def test_with_a_model_configured_classify_and_summarize_use_it_and_fall_back_without():
    from django.test import override_settings

    from tests.fakes.openai_server import FakeOpenAI

    model = FakeOpenAI()
    try:
        with override_settings(NEENA_LLM_BASE_URL=model.base_url, NEENA_LLM_MODEL="m", NEENA_LLM_MAX_RETRIES=0):
            model.answer({"label": "question"})
            model.answer({"label": "not one of them"})
            model.answer({"summary": "Short."})
            model.answer("", status=503)
            labels = ["bug", "question"]
            assert core.classify_text(_context(), text="How do I?", labels=labels, keywords={}) == {"label": "question"}
            assert core.classify_text(_context(), text="A bug.", labels=labels, keywords={}) == {"label": "bug"}
            assert core.summarize_text(_context(), text="Long. Text.", max_sentences=1) == {"summary": "Short."}
            assert core.summarize_text(_context(), text="Long. Text.", max_sentences=1) == {"summary": "Long."}
        assert len(model.requests) == 4
    finally:
        model.stop()
