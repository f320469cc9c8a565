"""The shape every connector module declares: its integration, task definitions and webhook trigger definitions.

A connector module (``apps/integrations/connectors/<short_name>.py``) exposes one ``CONNECTOR = ConnectorSpec(...)``.
``python manage.py sync_catalog`` writes every declaration to the catalogue tables the API serves.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class DataType(StrEnum):
    """Types a parameter, output or event field may have; values are coerced to them before use."""

    STRING = "string"
    TEXT = "text"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    EMAIL = "email"
    URL = "url"
    LIST = "list"
    DICT = "dict"
    JSON = "json"
    DATETIME = "datetime"


class AuthType(StrEnum):
    NONE = "none"
    API_KEY = "api_key"
    OAUTH2 = "oauth2"
    BASIC = "basic"


class SignatureScheme(StrEnum):
    """How inbound webhook deliveries prove they come from the integration."""

    # Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature over id.timestamp.body, whsec_ secrets):
    # for senders Neena does not know, and for Neena's own relays.
    STANDARD_WEBHOOKS = "standard_webhooks"
    SLACK_V0 = "slack_v0"
    GITHUB_SHA256 = "github_sha256"
    ZENDESK = "zendesk"


@dataclass(frozen=True)
class Param:
    """A task input or output. ``default`` applies when preparation finds no value for an optional parameter."""

    name: str
    data_type: DataType
    doc_string: str
    optional: bool = False
    default: Any = None


@dataclass(frozen=True)
class RetryPolicy:
    """How often a transient failure (network, 5xx, 429) is retried, backing off exponentially from
    ``backoff_seconds``."""

    max_retries: int = 3
    backoff_seconds: float = 2.0
    time_limit_seconds: int = 60


# The two policies most REST connectors need. A side effect the service takes no idempotency key for (a post, a
# comment, a send) may happen twice when a retry follows a lost response, so it is retried sparingly; reads and writes
# that can safely be repeated (set a status, add labels) are retried more.
UNREPEATABLE_RETRY = RetryPolicy(max_retries=2, backoff_seconds=2.0, time_limit_seconds=30)
REPEATABLE_RETRY = RetryPolicy(max_retries=5, backoff_seconds=1.0, time_limit_seconds=30)


@dataclass(frozen=True)
class TaskSpec:
    """One task definition. ``side_effect`` marks tasks that change the outside world (send, post, create, reply):
    the approval policy parks runs before them."""

    task_name: str
    python_method_name: str
    description: str
    parameters: tuple[Param, ...]
    outputs: tuple[Param, ...]
    side_effect: bool = False
    output_is_list: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True)
class EventField:
    """A value taken from an inbound webhook payload by JSON path (``$.ticket.id``)."""

    name: str
    json_path: str
    data_type: DataType
    doc_string: str
    optional: bool = False


@dataclass(frozen=True)
class TriggerSpec:
    """One webhook trigger definition; ``entity_id_field`` names the event field identifying the entity (ticket,
    mail, issue) whose latest flow result is kept."""

    trigger_name: str
    python_method_name: str
    description: str
    event_fields: tuple[EventField, ...]
    entity_id_field: str
    signature_scheme: SignatureScheme


@dataclass(frozen=True)
class OAuth2Spec:
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    revoke_url: str = ""


@dataclass(frozen=True)
class ConnectorSpec:
    """An integration and everything it offers. ``base_url_setting`` names the setting holding the API's base URL,
    so tests point it at a fake service on 127.0.0.1.

    ``url_config`` and ``host_config`` name the credential config fields that say where the connector connects (a
    URL, a host name): saving a credential checks them early, without DNS (a 422 for a URL that is not http(s), or
    a literal address the egress guard would refuse); the guard itself checks the resolved address when connecting.
    """

    name: str
    short_name: str
    class_name: str
    auth_type: AuthType
    description: str
    base_url_setting: str = ""
    url_config: tuple[str, ...] = ()
    host_config: tuple[str, ...] = ()
    oauth2: OAuth2Spec | None = None
    tasks: tuple[TaskSpec, ...] = ()
    triggers: tuple[TriggerSpec, ...] = ()
