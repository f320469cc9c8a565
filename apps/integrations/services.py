"""Catalogue rules: writing the connector declarations to the catalogue tables."""

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import yaml
from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from apps.integrations.connectors import connector_specs
from apps.integrations.connectors.base import ConnectorSpec, Param, TaskSpec, TriggerSpec
from apps.integrations.models import Integration, TaskDefinition, WebhookTriggerDefinition


@dataclass
class SyncReport:
    """How many catalogue rows one sync created, changed and marked deleted."""

    created: int = 0
    updated: int = 0
    deleted: int = 0

    def __str__(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.deleted} marked deleted"


def _as_json(value: Any) -> Any:
    """The value as the JSON column will hand it back (tuples become lists), so comparisons see no false changes."""
    return json.loads(json.dumps(value))


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _params_as_rows(params: Sequence[Param]) -> list[dict[str, Any]]:
    return [
        {
            "name": param.name,
            "data_type": str(param.data_type),
            "position": position,
            "doc_string": param.doc_string,
            "optional": param.optional,
            "default": param.default,
        }
        for position, param in enumerate(params, start=1)
    ]


def _yml(rows: list[dict[str, Any]]) -> str:
    return yaml.safe_dump({"parameters": rows}, sort_keys=False)


def _integration_fields(spec: ConnectorSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "class_name": spec.class_name,
        "auth_type": str(spec.auth_type),
        "description": spec.description,
        "base_url_setting": spec.base_url_setting,
        "oauth2_config": _as_json(dataclasses.asdict(spec.oauth2)) if spec.oauth2 else {},
        "deleted_at": None,
    }


def _task_fields(task: TaskSpec) -> dict[str, Any]:
    parameters, outputs = _params_as_rows(task.parameters), _params_as_rows(task.outputs)
    return {
        "task_name": task.task_name,
        "description": task.description,
        "parameters": _as_json(parameters),
        "input_type": f"{_camel(task.python_method_name)}Input",
        "input_yml": _yml(parameters),
        "output_parameters": _as_json(outputs),
        "output_type": f"{_camel(task.python_method_name)}Output",
        "output_yml": _yml(outputs),
        "output_is_list": task.output_is_list,
        "side_effect": task.side_effect,
        "retry_policy": _as_json(dataclasses.asdict(task.retry)),
        "deleted_at": None,
    }


def _trigger_fields(trigger: TriggerSpec) -> dict[str, Any]:
    return {
        "trigger_name": trigger.trigger_name,
        "description": trigger.description,
        "event_fields": [
            {
                "name": field.name,
                "json_path": field.json_path,
                "data_type": str(field.data_type),
                "doc_string": field.doc_string,
                "optional": field.optional,
            }
            for field in trigger.event_fields
        ],
        "entity_id_field": trigger.entity_id_field,
        "signature_scheme": str(trigger.signature_scheme),
        "deleted_at": None,
    }


def _upsert(
    queryset: models.QuerySet, lookup: dict[str, Any], fields: dict[str, Any], report: SyncReport, using: str
) -> models.Model:
    """Creates the row or updates only the fields that differ, so an unchanged declaration leaves its row alone."""
    row = queryset.using(using).filter(**lookup).first()
    audit = {"created_by_email": settings.NEENA_SYSTEM_EMAIL, "modified_by_email": settings.NEENA_SYSTEM_EMAIL}
    if row is None:
        report.created += 1
        return queryset.using(using).create(**lookup, **fields, **audit)
    changed = [name for name, value in fields.items() if getattr(row, name) != value]
    if changed:
        for name in changed:
            setattr(row, name, fields[name])
        row.save(using=using, update_fields=[*changed, "modified_date"])
        report.updated += 1
    return row


def _mark_deleted(queryset: models.QuerySet, keep_ids: Iterable[Any], report: SyncReport) -> None:
    report.deleted += (
        queryset.filter(deleted_at__isnull=True)
        .exclude(id__in=list(keep_ids))
        .update(deleted_at=timezone.now(), modified_date=timezone.now())
    )


def catalog_sync(*, specs: Sequence[ConnectorSpec] | None = None, using: str = "default") -> SyncReport:
    """Writes every connector declaration to the catalogue; idempotent.

    Steps: upsert each integration by ``short_name``, each task and trigger definition by (integration,
    ``python_method_name``); then set ``deleted_at`` on rows whose declaration is gone (rows are kept, since flows
    may refer to them). A declaration that comes back is revived.
    """
    with transaction.atomic(using=using):
        return _catalog_sync(connector_specs() if specs is None else specs, using)


def _catalog_sync(specs: Sequence[ConnectorSpec], using: str) -> SyncReport:
    report = SyncReport()
    integration_ids, task_ids, trigger_ids = [], [], []
    for spec in specs:
        integration = _upsert(
            Integration.objects.all(), {"short_name": spec.short_name}, _integration_fields(spec), report, using
        )
        integration_ids.append(integration.pk)
        for task in spec.tasks:
            lookup = {"integration": integration, "python_method_name": task.python_method_name}
            task_ids.append(_upsert(TaskDefinition.objects.all(), lookup, _task_fields(task), report, using).pk)
        for trigger in spec.triggers:
            lookup = {"integration": integration, "python_method_name": trigger.python_method_name}
            trigger_ids.append(
                _upsert(WebhookTriggerDefinition.objects.all(), lookup, _trigger_fields(trigger), report, using).pk
            )
    # Only the shared catalogue is the code's: an organization's own integrations (MCP servers) are synced by theirs.
    shared_tasks = TaskDefinition.objects.using(using).filter(integration__organization__isnull=True)
    _mark_deleted(shared_tasks, task_ids, report)
    _mark_deleted(WebhookTriggerDefinition.objects.using(using), trigger_ids, report)
    _mark_deleted(Integration.objects.using(using).filter(organization__isnull=True), integration_ids, report)
    return report


def owned_integration_sync(
    *, organization_id: Any, short_name: str, name: str, class_name: str, description: str, tasks: Sequence[TaskSpec]
) -> Integration:
    """Writes an organization's own integration (an MCP server's) and its task definitions, as ``catalog_sync`` does
    for the shared ones: upsert by short name and method name, revive what comes back, mark what is gone deleted."""
    report = SyncReport()
    with transaction.atomic():
        fields = {
            "name": name,
            "class_name": class_name,
            "auth_type": Integration.AuthType.NONE,
            "description": description,
            "organization_id": organization_id,
            "deleted_at": None,
        }
        integration = cast(
            Integration, _upsert(Integration.objects.all(), {"short_name": short_name}, fields, report, "default")
        )
        task_ids = []
        for task in tasks:
            lookup = {"integration": integration, "python_method_name": task.python_method_name}
            task_ids.append(_upsert(TaskDefinition.objects.all(), lookup, _task_fields(task), report, "default").pk)
        _mark_deleted(TaskDefinition.objects.filter(integration=integration), task_ids, report)
    return integration


def owned_integration_delete(*, integration_id: Any) -> None:
    """Marks an organization's own integration and its task definitions deleted (flows that name them keep them)."""
    now = timezone.now()
    with transaction.atomic():
        TaskDefinition.objects.filter(integration_id=integration_id, deleted_at__isnull=True).update(
            deleted_at=now, modified_date=now
        )
        Integration.objects.filter(id=integration_id, organization__isnull=False, deleted_at__isnull=True).update(
            deleted_at=now, modified_date=now
        )
