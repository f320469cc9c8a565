"""The ``llm`` integration: generate, classify, summarise and draft text with an OpenAI-compatible model.

The credential's secret ``api_key`` is the bearer key; its config may give ``base_url`` and ``model``, else
NEENA_LLM_BASE_URL and NEENA_LLM_MODEL apply. Every connection goes through the egress guard
(``apps/integrations/egress.py``): a credential's ``base_url`` is a user's choice, so its host must resolve to public
addresses only, unless it is in NEENA_HTTP_ALLOWLIST (where a model server on the local network goes); the setting
is the operator's, and may point anywhere. A refused address fails the step (``EgressRefusedError``), without a retry.

The client makes no retries of its own (``max_retries=0``): 429 (with its Retry-After), 5xx, timeouts and connection
errors become ``TransientTaskError`` and the engine retries with its backoff, within the step's time limit. Other
API errors (a bad key, an unknown model) are ``TaskError``.
"""

import re
from typing import Any, cast

import openai
from django.conf import settings

from apps.integrations.connectors.base import AuthType, ConnectorSpec, DataType, Param, RetryPolicy, TaskSpec
from apps.integrations.execution import TaskContext, TaskError, TransientTaskError
from apps.integrations.http import retry_after_seconds
from apps.integrations.llm import egress_http_client

# Nothing here changes the outside world, so retries are safe; models can be slow, so the time limit is generous.
MODEL_RETRY = RetryPolicy(max_retries=3, backoff_seconds=2.0, time_limit_seconds=120)

CONNECTOR = ConnectorSpec(
    name="OpenAI-compatible LLM",
    short_name="llm",
    class_name="LlmIntegration",
    auth_type=AuthType.API_KEY,
    url_config=("base_url",),
    description="An AI language model (LLM) behind an OpenAI-compatible chat completions API, such as OpenAI, a "
    "hosted open model or a local server.",
    tasks=(
        TaskSpec(
            task_name="Generate Text with LLM",
            python_method_name="generate_text",
            description="Ask an AI language model (LLM) to generate or write new content from a prompt, e.g. a "
            "product description or an answer to a question.",
            parameters=(
                Param("prompt", DataType.TEXT, "What the model should write or answer."),
                Param(
                    "system",
                    DataType.TEXT,
                    "Optional system instructions: the model's role, tone or rules.",
                    optional=True,
                    default="",
                ),
            ),
            outputs=(Param("text", DataType.TEXT, "The model's answer."),),
            retry=MODEL_RETRY,
        ),
        TaskSpec(
            task_name="Classify Text with LLM",
            python_method_name="llm_classify_text",
            description="Have an AI language model (LLM) decide which one of the given categories fits best.",
            parameters=(
                Param("text", DataType.TEXT, "What the model reads and categorises."),
                Param("labels", DataType.LIST, "The choices; the answer is always one of them."),
            ),
            outputs=(Param("label", DataType.STRING, "The choice the model made."),),
            retry=MODEL_RETRY,
        ),
        TaskSpec(
            task_name="Summarize Text with LLM",
            python_method_name="llm_summarize_text",
            description="Have an AI language model (LLM) condense a long document into a short abstract written in "
            "its own words, where the built-in extractive step would only pick out passages.",
            parameters=(
                Param("text", DataType.TEXT, "The document for the model to condense."),
                Param("max_sentences", DataType.INT, "At most this many sentences.", optional=True, default=3),
            ),
            outputs=(Param("summary", DataType.TEXT, "The model's abstract."),),
            retry=MODEL_RETRY,
        ),
        TaskSpec(
            task_name="Draft Reply with LLM",
            python_method_name="draft_reply",
            description="Have an AI language model (LLM) draft an answer to a message for review; nothing is sent.",
            parameters=(
                Param("message", DataType.TEXT, "The message to answer."),
                Param(
                    "instructions",
                    DataType.TEXT,
                    "Optional guidance for the draft: tone, points to make, facts to include.",
                    optional=True,
                    default="",
                ),
            ),
            outputs=(Param("reply", DataType.TEXT, "The drafted reply text."),),
            retry=MODEL_RETRY,
        ),
    ),
)


# --- Implementations ---------------------------------------------------------------------------------------------

SUMMARY_SYSTEM = "You summarize texts faithfully and concisely. Answer with the summary only, no preamble."
DRAFT_SYSTEM = (
    "You draft replies to messages on behalf of the user. Write only the reply text, ready to send: no subject line, "
    "no notes about the draft."
)


def generate_text(context: TaskContext, *, prompt: str, system: str = "") -> dict[str, Any]:
    messages = ([{"role": "system", "content": system}] if system.strip() else []) + [
        {"role": "user", "content": prompt}
    ]
    return {"text": _complete(context, messages)}


def llm_classify_text(context: TaskContext, *, text: str, labels: list[Any]) -> dict[str, Any]:
    """Asks for one label; an answer outside the labels gets one correction, and a second miss is a TaskError."""
    choices = list(dict.fromkeys(str(label).strip() for label in labels if str(label).strip()))
    if not choices:
        raise TaskError("Classify Text with LLM needs at least one label.")
    listed = "\n".join(f"- {choice}" for choice in choices)
    messages = [
        {
            "role": "system",
            "content": "You classify texts. Answer with exactly one of these labels, written as given, and nothing "
            f"else:\n{listed}",
        },
        {"role": "user", "content": text},
    ]
    answer = _complete(context, messages, temperature=0)
    label = _matching_label(answer, choices)
    if label is None:
        messages += [
            {"role": "assistant", "content": answer},
            {
                "role": "user",
                "content": f"That is not one of the labels. Answer with exactly one of: {', '.join(choices)}.",
            },
        ]
        answer = _complete(context, messages, temperature=0)
        label = _matching_label(answer, choices)
    if label is None:
        raise TaskError(f"The model answered '{answer[:100]}', not one of the labels {', '.join(choices)}.")
    return {"label": label}


def llm_summarize_text(context: TaskContext, *, text: str, max_sentences: int = 3) -> dict[str, Any]:
    if max_sentences < 1:
        raise TaskError("Summarize Text with LLM needs max_sentences of at least 1.")
    messages = [
        {"role": "system", "content": SUMMARY_SYSTEM},
        {
            "role": "user",
            "content": f"Summarize this text in at most {max_sentences} sentence{'s' if max_sentences > 1 else ''}:"
            f"\n\n{text}",
        },
    ]
    return {"summary": _complete(context, messages, temperature=0)}


def draft_reply(context: TaskContext, *, message: str, instructions: str = "") -> dict[str, Any]:
    request = f"Draft a reply to this message:\n\n{message}"
    if instructions.strip():
        request += f"\n\nInstructions for the reply: {instructions}"
    messages = [{"role": "system", "content": DRAFT_SYSTEM}, {"role": "user", "content": request}]
    return {"reply": _complete(context, messages)}


def _matching_label(answer: str, choices: list[str]) -> str | None:
    """The label the answer names: the whole answer (ignoring case, quotes and end punctuation), else the only label
    found in it as a whole word or phrase."""
    cleaned = answer.strip().strip("\"'`*.:!").strip().lower()
    for choice in choices:
        if cleaned == choice.lower():
            return choice
    found = [
        choice
        for choice in choices
        if re.search(rf"(?<![\w-]){re.escape(choice.lower())}(?![\w-])", answer.lower()) is not None
    ]
    return found[0] if len(found) == 1 else None


def _complete(context: TaskContext, messages: list[dict[str, str]], *, temperature: float | None = None) -> str:
    """One chat completion with the credential's key, model and base URL; returns the answer's text."""
    credential = context.require_credential()
    api_key = str(credential.secrets.get("api_key") or "")
    user_base_url = str(credential.config.get("base_url") or "")
    base_url = user_base_url or str(settings.NEENA_LLM_BASE_URL or "")
    model = str(credential.config.get("model") or settings.NEENA_LLM_MODEL or "")
    if not api_key:
        raise TaskError("The LLM credential has no api_key.")
    if not base_url or not model:
        raise TaskError(
            "No model configured: give base_url and model in the LLM credential's config, or set NEENA_LLM_BASE_URL "
            "and NEENA_LLM_MODEL."
        )
    options: dict[str, Any] = {} if temperature is None else {"temperature": temperature}
    try:
        with openai.OpenAI(
            base_url=base_url,
            api_key=api_key,
            timeout=context.time_limit_seconds,
            max_retries=0,
            http_client=egress_http_client(trusted_urls=[] if user_base_url else [base_url]),
        ) as client:
            response = client.chat.completions.create(model=model, messages=cast(Any, messages), **options)
    except openai.RateLimitError as error:
        raise TransientTaskError(
            f"The model is rate limiting (429): {_api_message(error)}",
            retry_after=retry_after_seconds(cast(Any, error.response)),
        ) from error
    except (openai.APIConnectionError, openai.InternalServerError) as error:  # timeouts are connection errors
        raise TransientTaskError(
            f"The model could not answer: {type(error).__name__}: {_api_message(error)}"
        ) from error
    except openai.APIStatusError as error:
        raise TaskError(f"The model refused the request ({error.status_code}): {_api_message(error)}") from error
    except openai.APIError as error:
        raise TaskError(f"The model's answer could not be read: {type(error).__name__}: {error}") from error
    content = response.choices[0].message.content if response.choices else None
    if not content or not content.strip():
        raise TaskError("The model answered with no text.")
    return content.strip()


def _api_message(error: openai.APIError) -> str:
    """The service's own error message when its body has one, else the client's."""
    body = error.body
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return error.message
