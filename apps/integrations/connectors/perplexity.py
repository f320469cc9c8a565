"""The ``perplexity`` integration: ask Perplexity's web-searching models a question and get an answer with sources.

Calls ``POST {NEENA_PERPLEXITY_BASE_URL}/chat/completions`` (OpenAI's shape, plus the sources) with the credential's
``api_key`` as a bearer token. 429 and 5xx are retried by the engine; other 4xx (a bad key, an unknown model) fail
the step with Perplexity's message.
"""

from typing import Any

from apps.integrations.connectors.base import AuthType, ConnectorSpec, DataType, Param, RetryPolicy, TaskSpec
from apps.integrations.execution import TaskContext, TaskError
from apps.integrations.http import base_url, request

SERVICE = "Perplexity"
# A question changes nothing, so retries are safe; searching the web takes a while.
ASK_RETRY = RetryPolicy(max_retries=3, backoff_seconds=2.0, time_limit_seconds=90)

CONNECTOR = ConnectorSpec(
    name="Perplexity",
    short_name="perplexity",
    class_name="PerplexityIntegration",
    auth_type=AuthType.API_KEY,
    description="Perplexity's answer engine: ask a question, get an answer researched on the web with its sources.",
    base_url_setting="NEENA_PERPLEXITY_BASE_URL",
    tasks=(
        TaskSpec(
            task_name="Ask Perplexity",
            python_method_name="ask",
            description="Ask Perplexity a question and get an up-to-date answer researched on the web, with the "
            "URLs it cites, e.g. look up recent news about a company.",
            parameters=(
                Param("question", DataType.TEXT, "The question to research and answer."),
                Param(
                    "model",
                    DataType.STRING,
                    "The Perplexity model, e.g. 'sonar' (fast) or 'sonar-pro' (deeper research).",
                    optional=True,
                    default="sonar",
                ),
            ),
            outputs=(
                Param("answer", DataType.TEXT, "Perplexity's answer."),
                Param("citations", DataType.LIST, "The URLs of the sources the answer cites, in citation order."),
            ),
            retry=ASK_RETRY,
        ),
    ),
)


# --- Implementations ---------------------------------------------------------------------------------------------


def ask(context: TaskContext, *, question: str, model: str = "sonar") -> dict[str, Any]:
    credential = context.require_credential()
    api_key = str(credential.secrets.get("api_key") or "")
    if not api_key:
        raise TaskError("The Perplexity credential has no api_key.")
    response = request(
        SERVICE,
        "POST",
        f"{base_url(CONNECTOR.base_url_setting)}/chat/completions",
        headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
        json={"model": model or "sonar", "messages": [{"role": "user", "content": question}]},
        timeout=context.time_limit_seconds,
        trusted=True,  # the setting: the operator's choice
    )
    try:
        body = response.json()
        answer = body["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise TaskError(f"Perplexity answered in an unexpected shape ({type(error).__name__}: {error}).") from error
    if not isinstance(answer, str) or not answer.strip():
        raise TaskError("Perplexity answered with no text.")
    return {"answer": answer.strip(), "citations": _citations(body)}


def _citations(body: dict[str, Any]) -> list[str]:
    """The cited URLs: ``citations`` when given, else the URLs of ``search_results`` (Perplexity's newer field)."""
    citations = body.get("citations")
    if isinstance(citations, list) and citations:
        return [str(citation) for citation in citations if citation]
    results = body.get("search_results")
    if isinstance(results, list):
        return [str(result["url"]) for result in results if isinstance(result, dict) and result.get("url")]
    return []
