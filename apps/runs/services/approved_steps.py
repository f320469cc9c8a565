"""What an approval fixes about a step, and the check, when the step runs, that it is still exactly that.

An approver sees a parked step: its task, the integration, and the prepared parameters (with their overrides). The
approval records those facts on the task run (``TaskRun.approved_step``, copied into the decision's audit): the
step's task operation and task definition, a digest of the definition's declaration in the catalogue, the credential
the step would use (its id, its owner, a digest of its settings and, for API-key and basic credentials, an HMAC of its
secret), the parameter values, and a fingerprint (SHA-256) of all of them. When the
approved step runs, the engine rebuilds the facts from what it is about to execute; anything different (the task
removed from the catalogue or redeclared, another operation, other parameters, a record that does not match its
fingerprint) fails the step with a message saying what, and nothing is called. The approved credential itself is
the one used, or none (``credential_approved_for_step``), with the settings and the secret approved
(``apps.runs.services.step_execution``).

A flow version's steps never change, so an edit of the flow cannot reach an approved step; this check is what keeps
the promise when anything else under it moves (the catalogue, the credentials, the stored rows).
"""

import hashlib
import json
from typing import Any

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

from apps.credentials.encryption import DecryptionError, decrypt_json
from apps.credentials.models import IntegrationCredential
from apps.integrations.models import Integration, TaskDefinition
from apps.runs.models import TaskRun

# Credential settings an OAuth2 token answer writes (``apps.credentials.services.oauth2``), on every refresh.
TOKEN_CONFIG = frozenset({"scope", "token_type"})
# The kinds of credential whose secret an approval binds: one a person hands over and only they replace. OAuth2
# tokens change on every refresh, so they are bound by the credential's id and settings only.
SECRET_BOUND_AUTH_TYPES = frozenset({Integration.AuthType.API_KEY, Integration.AuthType.BASIC})
# Separates this HMAC's key from every other use of SECRET_KEY (Django derives the key from the salt and the secret).
HMAC_KEY_SALT = "neena.runs.approved_step.credential_secret"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _digest(value: Any) -> str:
    return hashlib.sha256(_canonical(value).encode()).hexdigest()


def definition_digest(definition: TaskDefinition) -> str:
    """A digest of what the catalogue declares for the task: which integration and function, and its parameters."""
    return _digest(
        {
            "id": str(definition.id),
            "integration": str(definition.integration_id),
            "task_name": definition.task_name,
            "python_method_name": definition.python_method_name,
            "parameters": definition.parameters,
            "side_effect": definition.side_effect,
        }
    )


def credential_config_digest(config: dict[str, Any]) -> str:
    """A digest of a credential's settings (where it connects: a subdomain, a host, a base URL; its account email).
    Replacing a credential keeps its id, so the approval records these too: the approved side effect must not go to
    another account. The secrets are left out, and so are the settings an OAuth2 token answer rewrites on each
    refresh (``TOKEN_CONFIG``): a refresh changes them without changing the account."""
    return _digest({key: value for key, value in (config or {}).items() if key not in TOKEN_CONFIG})


def _secret_hmac(secrets: dict[str, Any], key: str) -> str:
    return salted_hmac(HMAC_KEY_SALT, _canonical(secrets), secret=key, algorithm="sha256").hexdigest()


def credential_secret_hmac(*, auth_type: str, secrets: dict[str, Any] | None) -> str | None:
    """An HMAC of a credential's decrypted secret fields (keyed with a key derived from SECRET_KEY, never the secret
    itself, so the record shown with the run reveals nothing of it), for API-key and basic credentials. Replacing a
    credential keeps its id and may keep its settings, so without this its owner could swap the key an approved side
    effect runs with. None for OAuth2 tokens (a refresh changes them, not the account), and for a secret that could
    not be decrypted (``secrets`` None): a step then fails, as that never matches a secret decrypted later."""
    if auth_type not in SECRET_BOUND_AUTH_TYPES or secrets is None:
        return None
    return _secret_hmac(secrets, settings.SECRET_KEY)


def credential_secret_matches(*, approved: str | None, auth_type: str, secrets: dict[str, Any]) -> bool:
    """Whether the secret a step is about to use is the one approved (``credential_secret_hmac`` then). An HMAC made
    before a SECRET_KEY rotation is checked with the old key too (SECRET_KEY_FALLBACKS)."""
    if auth_type not in SECRET_BOUND_AUTH_TYPES:
        return approved is None
    if approved is None:
        return False
    keys = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return any(constant_time_compare(approved, _secret_hmac(secrets, key)) for key in keys)


def _stored_secrets(credential: IntegrationCredential) -> dict[str, Any] | None:
    """The credential's secret fields decrypted (local, no network: an approval may do it in its transaction), or
    None when no configured key opens them."""
    try:
        return decrypt_json(credential.secret_ciphertext)
    except DecryptionError:
        return None


def prepared_values(task_prep_answer: dict[str, Any]) -> dict[str, Any]:
    """The parameter values of a prepared answer, by name."""
    return {parameter["name"]: parameter["value"] for parameter in task_prep_answer.get("parameters", [])}


def approved_step_record(
    *, task_run: TaskRun, definition: TaskDefinition, credential: IntegrationCredential | None
) -> dict[str, Any]:
    """What approving ``task_run`` (with its prepared answer as the approver leaves it) fixes, with its fingerprint."""
    facts = {
        "task_operation": str(task_run.task_operation_id),
        "task_definition": str(definition.id),
        "task_name": definition.task_name,
        "integration": definition.integration.short_name,
        "definition_digest": definition_digest(definition),
        "credential": None
        if credential is None
        else {
            "id": str(credential.id),
            "owner_email": credential.owner.email,
            "config_digest": credential_config_digest(credential.config),
            "secret_hmac": credential_secret_hmac(
                auth_type=definition.integration.auth_type, secrets=_stored_secrets(credential)
            ),
        },
        "parameters": prepared_values(task_run.task_prep_answer),
    }
    return {**facts, "fingerprint": _digest(facts)}


def approved_step_problem(*, task_run: TaskRun, definition: TaskDefinition, values: dict[str, Any]) -> str | None:
    """Why the approved step must not run as it stands (``values`` are the parameters it would be called with), or
    None when it is exactly what was approved."""
    approved = dict(task_run.approved_step)
    fingerprint = approved.pop("fingerprint", None)
    name = approved.get("task_name", definition.task_name)
    if fingerprint != _digest(approved):
        return "The record of what was approved for this step does not match its fingerprint; the step is not run."
    if approved["task_operation"] != str(task_run.task_operation_id) or approved["task_definition"] != str(
        definition.id
    ):
        return f"The step is no longer the '{name}' that was approved; it is not run."
    if definition.deleted_at is not None:
        return f"The task '{name}' was removed from the catalogue after the step was approved; it is not run."
    if approved["definition_digest"] != definition_digest(definition):
        return f"The task '{name}' changed in the catalogue after the step was approved; it is not run."
    if _canonical(approved["parameters"]) != _canonical(values):
        return "The step's parameters are not those that were approved; it is not run."
    return None
