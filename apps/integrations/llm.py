"""An OpenAI-compatible chat-completions model, asked for JSON: used by the llm planner and the llm preparer.

Settings: NEENA_LLM_BASE_URL, NEENA_LLM_MODEL, NEENA_LLM_API_KEY, NEENA_LLM_TIMEOUT_SECONDS, NEENA_LLM_MAX_RETRIES.
The ``openai`` client retries connection errors, 429 (honouring Retry-After) and 5xx itself; what is still failing
after that is ``ModelUnavailableError``, and callers fall back to their rules-based counterpart.

The client connects through the egress guard (``apps/integrations/egress.py``) like every integration call; the
setting's origin is the operator's choice and trusted, and a redirect to anywhere else is checked.
"""

import json
from typing import TYPE_CHECKING, Any, cast

import openai
from django.conf import settings

from apps.integrations import egress
from apps.integrations.execution import TaskError

if TYPE_CHECKING:
    import httpx2


class ModelUnavailableError(Exception):
    """The model could not be reached or refused the call (network, timeout, 429 or 5xx after retries, 4xx)."""


class ModelAnswerError(Exception):
    """The model answered, but not with a JSON object."""


def configured() -> bool:
    return bool(settings.NEENA_LLM_BASE_URL and settings.NEENA_LLM_MODEL)


def egress_http_client(*, trusted_urls: list[str]) -> "httpx2.Client":
    """The guarded httpx client for ``openai.OpenAI(http_client=...)``, following redirects as openai's own does.

    openai is typed for httpx2 clients and documents httpx ones as accepted too ("an instance of `httpx.Client` or
    `httpx2.Client`"); the guard is an httpx transport, so this one client family carries every integration call.
    """
    return cast("httpx2.Client", egress.client(trusted_urls=trusted_urls, follow_redirects=True))


def _client() -> openai.OpenAI:
    return openai.OpenAI(
        base_url=settings.NEENA_LLM_BASE_URL,
        # Local OpenAI-compatible servers often need no key; the client insists on one.
        api_key=settings.NEENA_LLM_API_KEY or "unused",
        timeout=settings.NEENA_LLM_TIMEOUT_SECONDS,
        max_retries=settings.NEENA_LLM_MAX_RETRIES,
        http_client=egress_http_client(trusted_urls=[settings.NEENA_LLM_BASE_URL]),
    )


def chat_json(messages: list[dict[str, str]]) -> tuple[dict[str, Any], str]:
    """Sends the messages; returns the answer parsed as a JSON object, and its raw text."""
    try:
        with _client() as client:
            response = client.chat.completions.create(
                model=settings.NEENA_LLM_MODEL,
                messages=cast(Any, messages),
                response_format={"type": "json_object"},
                temperature=0,
            )
    except (openai.APIError, TaskError) as error:  # TaskError: the egress guard refused an address (a redirect's)
        raise ModelUnavailableError(f"{type(error).__name__}: {error}") from error
    content = (response.choices[0].message.content or "").strip() if response.choices else ""
    if content.startswith("```"):
        content = content.strip("`").removeprefix("json").strip()
    try:
        answer = json.loads(content)
    except json.JSONDecodeError as error:
        raise ModelAnswerError(f"The answer is not JSON ({error.msg} at position {error.pos}).") from error
    if not isinstance(answer, dict):
        raise ModelAnswerError("The answer is JSON but not an object.")
    return answer, content
