"""The rules preparer: where each parameter's value comes from, coercion, and the failures that name a parameter."""

import dataclasses

import pytest

from apps.flows.models import FlowRequest, TaskOperation
from apps.runs.services.preparation import (
    OverrideError,
    PreparationError,
    StepInputs,
    parameters_override,
    step_prepare,
)
from tests.factories import task_definition

pytestmark = pytest.mark.django_db


def _inputs(task, *, instruction="", bindings=None, request="Do it.", metadata=None, upstream=None, direct=None):
    definition = task_definition(task)
    operation = TaskOperation(
        index=5, name="Step", instruction=instruction, parameters=bindings or {}, task_definition=definition
    )
    flow_request = FlowRequest(request_instructions=request, request_metadata=metadata or [])
    upstream = upstream or {}
    return StepInputs(
        operation=operation,
        definition=definition,
        flow_request=flow_request,
        upstream_results=upstream,
        direct_predecessors=direct if direct is not None else sorted(upstream)[-1:],
        nearest_first=sorted(upstream, reverse=True),
    )


def _prepared(inputs):
    return {p.name: (p.value, p.source) for p in step_prepare(inputs).parameters}


def test_binding_wins_and_templates_keep_types():
    inputs = _inputs(
        "Extract Field",
        bindings={"data": "{{ steps.2.result.ticket }}", "path": "requester.{{ request.metadata.field }}"},
        metadata={"field": "email"},
        upstream={2: {"ticket": {"requester": {"email": "ann@example.com"}}}},
    )

    assert _prepared(inputs) == {
        "data": ({"requester": {"email": "ann@example.com"}}, "binding"),
        "path": ("requester.email", "binding"),
    }


def test_metadata_then_upstream_by_name():
    inputs = _inputs(
        "Send Notification",
        metadata=[{"recipient": "meta@example.com"}],
        upstream={1: {"message": "from step 1", "recipient": "step@example.com"}},
    )

    assert _prepared(inputs) == {
        "recipient": ("meta@example.com", "request metadata"),
        "message": ("from step 1", "step 1's result"),
    }


def test_instruction_text_emails_quotes_and_numbers():
    notify = _inputs("Send Notification", instruction='Tell bob@example.com "the build is green"')
    summarize = _inputs("Summarize Text", instruction="Summarise it in 2 sentences", upstream={0: {"text": "A. B. C."}})

    assert _prepared(notify) == {
        "recipient": ("bob@example.com", "instruction text"),
        "message": ("the build is green", "instruction text"),
    }
    assert _prepared(summarize) == {"text": ("A. B. C.", "step 0's result"), "max_sentences": (2, "instruction text")}


def test_prose_parameters_take_the_main_output_of_the_step_before():
    inputs = _inputs("Set Flow Result", upstream={3: {"summary": "All good."}})

    assert _prepared(inputs) == {"body": ("All good.", "step 3's result")}


def test_defaults_and_coercion():
    inputs = _inputs("Summarize Text", bindings={"text": "Hello."}, metadata={"max_sentences": "4"})

    assert _prepared(inputs) == {"text": ("Hello.", "binding"), "max_sentences": (4, "request metadata")}
    assert _prepared(_inputs("Summarize Text", bindings={"text": "x"}))["max_sentences"] == (3, "default")


def test_answer_records_explanations_and_the_prompt_describes_the_step():
    preparation = step_prepare(_inputs("Send Notification", instruction='Tell bob@example.com "hi"'))

    assert preparation.answer["preparer"] == "rules"
    assert preparation.answer["parameters"][0] == {
        "name": "recipient",
        "value": "bob@example.com",
        "explanation": "Found in the step's instruction text.",
        "source": "instruction text",
    }
    system, user = preparation.prompt["messages"]
    assert system["role"] == "system"
    assert "Send Notification" in user["content"]


def test_a_missing_required_parameter_is_named():
    with pytest.raises(PreparationError, match="required parameter 'recipient' of 'Send Notification'") as error:
        step_prepare(_inputs("Send Notification", instruction="Tell the team"))

    assert error.value.preparation.prompt["messages"]


def test_a_value_of_the_wrong_type_is_named():
    with pytest.raises(PreparationError, match=r"Parameter 'max_sentences'.*expected an integer.*request metadata"):
        step_prepare(_inputs("Summarize Text", bindings={"text": "x"}, metadata={"max_sentences": "many"}))


def test_a_template_reading_nothing_is_named():
    with pytest.raises(PreparationError, match="found nothing at 'nope'"):
        step_prepare(_inputs("Set Flow Result", bindings={"body": "{{ request.metadata.nope }}"}))


def test_overrides_are_type_checked_and_audited():
    definition = task_definition("Summarize Text")
    answer = {"parameters": [{"name": "text", "value": "a", "explanation": "", "source": "binding"}]}

    new_answer, changes = parameters_override(answer, definition, {"max_sentences": 2})

    assert [p["name"] for p in new_answer["parameters"]] == ["text", "max_sentences"]
    assert new_answer["parameters"][1]["value"] == 2
    assert changes == [{"name": "max_sentences", "old_value": None, "new_value": 2}]
    with pytest.raises(OverrideError, match="no parameter 'nope'"):
        parameters_override(answer, definition, {"nope": 1})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("max_sentences", "2", r"Parameter 'max_sentences' \(int\): expected an integer, not text\."),
        ("max_sentences", True, "expected an integer, not a boolean"),
        ("max_sentences", 2.5, "expected an integer"),
        ("text", 5, r"Parameter 'text' \(text\): expected text, not a number\."),
        ("text", None, "expected text, not null"),
        ("text", ["a"], "expected text, not a list"),
    ],
)
def test_an_override_of_another_type_is_refused_not_converted(name, value, message):
    answer = {"parameters": []}

    with pytest.raises(OverrideError, match=message) as raised:
        parameters_override(answer, task_definition("Summarize Text"), {name: value})
    assert raised.value.name == name


def test_overrides_keep_a_prepared_parameter_the_definition_no_longer_declares():
    """The catalogue may redeclare a task while a step waits; approving then answered 500 (a KeyError)."""
    definition = task_definition("Summarize Text")
    answer = {"parameters": [{"name": "recipient", "value": "ann@example.com"}, {"name": "text", "value": "t"}]}

    new_answer, _ = parameters_override(answer, definition, {"max_sentences": 2})

    assert [p["name"] for p in new_answer["parameters"]] == ["text", "max_sentences", "recipient"]


# --- the llm preparer ------------------------------------------------------------------------------------------


@pytest.fixture
def model():
    from django.test import override_settings

    from tests.fakes.openai_server import FakeOpenAI

    server = FakeOpenAI()
    with override_settings(
        NEENA_PREPARER="llm",
        NEENA_LLM_BASE_URL=server.base_url,
        NEENA_LLM_MODEL="fake-model",
        NEENA_LLM_TIMEOUT_SECONDS=2,
        NEENA_LLM_MAX_RETRIES=0,
    ):
        yield server
    server.stop()


def test_llm_preparer_takes_the_models_values_but_keeps_bindings(model):
    from apps.runs.services.preparation import step_prepare_configured

    model.answer(
        {
            "parameters": [
                {"name": "recipient", "value": "boss@example.com", "explanation": "The request names the boss."},
                {"name": "message", "value": "ignored: bound explicitly", "explanation": "x"},
            ]
        }
    )

    preparation = step_prepare_configured(_inputs("Send Notification", bindings={"message": "Bound text"}))

    assert _values(preparation) == {
        "recipient": ("boss@example.com", "model"),
        "message": ("Bound text", "binding"),
    }
    assert preparation.answer["preparer"] == "llm"
    (request,) = model.requests
    assert preparation.prompt["messages"] == request.body["messages"]


def test_a_reruns_overrides_come_before_bindings_and_supply_what_nothing_else_does():
    inputs = _inputs("Send Notification", bindings={"message": "Bound text"})
    overridden = dataclasses.replace(inputs, overrides={"message": "Set again", "recipient": "bo@example.com"})

    with pytest.raises(PreparationError, match="recipient"):
        step_prepare(inputs)
    assert _prepared(overridden) == {
        "recipient": ("bo@example.com", "rerun override"),
        "message": ("Set again", "rerun override"),
    }


def test_llm_preparer_keeps_a_reruns_overrides(model):
    from apps.runs.services.preparation import step_prepare_configured

    model.answer({"parameters": [{"name": "message", "value": "the model's", "explanation": "x"}]})
    inputs = dataclasses.replace(
        _inputs("Send Notification", bindings={"recipient": "ann@example.com"}), overrides={"message": "Set again"}
    )

    assert _values(step_prepare_configured(inputs))["message"] == ("Set again", "rerun override")


def test_llm_preparer_replaces_values_of_the_wrong_type_and_falls_back_when_unreachable(model):
    from apps.runs.services.preparation import step_prepare_configured

    model.answer({"parameters": [{"name": "max_sentences", "value": "lots"}]})
    inputs = _inputs("Summarize Text", bindings={"text": "A."}, instruction="in 2 sentences")

    assert _values(step_prepare_configured(inputs))["max_sentences"] == (2, "instruction text")
    model.answer("", status=503)
    fallback = step_prepare_configured(inputs)
    assert fallback.answer["preparer"].startswith("rules (the model could not be used")


def _values(preparation):
    return {p.name: (p.value, p.source) for p in preparation.parameters}
