"""``catalog_sync``: writes every declaration, is idempotent, marks removed ones deleted and revives returning ones."""

import dataclasses

import pytest

from apps.integrations.connectors import connector_specs
from apps.integrations.models import Integration, TaskDefinition, WebhookTriggerDefinition
from apps.integrations.services import catalog_sync

pytestmark = pytest.mark.django_db

CORE_TASKS = {
    "Format Text": (["template", "values"], ["text"], False),
    "Extract Field": (["data", "path"], ["value"], False),
    "Classify Text": (["text", "labels", "keywords"], ["label"], False),
    "Summarize Text": (["text", "max_sentences"], ["summary"], False),
    "Send Notification": (["recipient", "message"], ["notification_id"], True),
    "Set Flow Result": (["body"], ["body"], False),
}


def test_migrate_has_synced_the_catalogue():
    declared = {spec.short_name for spec in connector_specs()}

    assert set(Integration.objects.values_list("short_name", flat=True)) == declared
    assert {"core", "slack", "trello", "zendesk", "gmail", "github", "webhook"} <= declared


def test_core_tasks_are_exactly_as_designed():
    core = TaskDefinition.objects.filter(integration__short_name="core")

    found = {
        task.task_name: (task.parameter_names, [output["name"] for output in task.output_parameters], task.side_effect)
        for task in core
    }
    assert found == CORE_TASKS


def test_parameters_carry_types_positions_and_yaml():
    task = TaskDefinition.objects.get(task_name="Summarize Text")

    assert task.parameters[1] == {
        "name": "max_sentences",
        "data_type": "int",
        "position": 2,
        "doc_string": "How many sentences to keep.",
        "optional": True,
        "default": 3,
    }
    assert task.input_type == "SummarizeTextInput"
    assert "name: max_sentences" in task.input_yml


def test_resync_changes_nothing():
    before = {task.id: task.modified_date for task in TaskDefinition.objects.all()}

    report = catalog_sync()

    assert (report.created, report.updated, report.deleted) == (0, 0, 0)
    assert {task.id: task.modified_date for task in TaskDefinition.objects.all()} == before


def test_removed_declarations_get_deleted_at_and_come_back():
    specs = connector_specs()
    core = next(spec for spec in specs if spec.short_name == "core")
    without_slack = [
        dataclasses.replace(spec, tasks=spec.tasks[1:]) if spec is core else spec
        for spec in specs
        if spec.short_name != "slack"
    ]

    report = catalog_sync(specs=without_slack)

    assert report.deleted == 1 + 3 + 1 + 1  # the Slack integration, its three tasks and trigger, core's first task
    assert Integration.objects.get(short_name="slack").deleted_at is not None
    assert TaskDefinition.objects.get(task_name="Format Text").deleted_at is not None
    assert WebhookTriggerDefinition.objects.get(trigger_name="Slack Message Posted").deleted_at is not None

    revived = catalog_sync()

    assert revived.updated == report.deleted
    assert not TaskDefinition.objects.filter(deleted_at__isnull=False).exists()
