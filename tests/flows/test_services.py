"""Flow services: validation of steps, definitions and bindings; updates keep step rows; organizations."""

import pytest

from apps.core.exceptions import InputValidationError
from apps.flows.models import Dependency, TaskOperation
from apps.flows.services import DependencyDraft, TaskOperationDraft, flow_create, flow_update
from tests.factories import task_definition

pytestmark = pytest.mark.django_db


def _step(index, name="Format Text", **kwargs):
    return TaskOperationDraft(index=index, name=f"Step {index}", task_definition=task_definition(name).id, **kwargs)


def _locations(error):
    return [(tuple(item.loc), item.type) for item in error.value.items]


def test_creates_steps_and_edges_with_sorted_index(owner, organization):
    flow = flow_create(
        user=owner,
        name="Notify",
        task_operations=[_step(1, "Send Notification"), _step(0)],
        dependencies=[DependencyDraft(0, 1, "pass the text")],
    )

    assert flow.organization == organization
    assert flow.created_by_email == owner.email
    assert [(op.index, op.sorted_index) for op in flow.task_operations.all()] == [(0, 0), (1, 1)]
    assert list(flow.dependencies.values_list("source_task_operation", "target_task_operation")) == [(0, 1)]


def test_an_empty_flow_is_refused(owner):
    with pytest.raises(InputValidationError) as error:
        flow_create(user=owner, name="Empty", task_operations=[])

    assert _locations(error) == [(("body", "task_operations"), "dag.empty")]


def test_unknown_and_deleted_definitions_are_named(owner):
    from django.utils import timezone

    from apps.integrations.models import TaskDefinition

    removed = _step(0, "Summarize Text")
    TaskDefinition.objects.filter(id=removed.task_definition).update(deleted_at=timezone.now())
    unknown = TaskOperationDraft(index=1, name="x", task_definition="00000000-0000-0000-0000-000000000000")

    with pytest.raises(InputValidationError) as error:
        flow_create(user=owner, name="F", task_operations=[removed, unknown])

    assert _locations(error) == [
        (("body", "task_operations", 0, "task_definition"), "task_definition.not_found"),
        (("body", "task_operations", 1, "task_definition"), "task_definition.not_found"),
    ]


def test_bindings_are_checked_against_the_definition(owner):
    steps = [
        _step(0, parameters={"template": "Hi {name}", "nonsense": 1}),
        _step(1, "Summarize Text", parameters={"max_sentences": "many"}),
        _step(2, parameters={"template": "{{ steps.1.result.summary }}"}),
        _step(3, parameters={"template": "{{ settings.SECRET_KEY }}"}),
    ]

    with pytest.raises(InputValidationError) as error:
        flow_create(user=owner, name="F", task_operations=steps, dependencies=[DependencyDraft(0, 1)])

    assert _locations(error) == [
        (("body", "task_operations", 0, "parameters", "nonsense"), "binding.unknown_parameter"),
        (("body", "task_operations", 1, "parameters", "max_sentences"), "binding.type_mismatch"),
        (("body", "task_operations", 2, "parameters", "template"), "binding.not_upstream"),
        (("body", "task_operations", 3, "parameters", "template"), "binding.invalid_template"),
    ]


def test_a_template_reading_an_undeclared_output_is_named(owner):
    steps = [
        _step(0),  # Format Text outputs text
        _step(1, "Summarize Text", parameters={"text": "{{ steps.0.result.txt }}"}),
        _step(2, parameters={"template": "{{ steps.1.result.summary }} / {{ steps.0.result.text.0 }}"}),
        _step(3, parameters={"template": "Both: {{ steps.0.result }} {{ steps.1.result.sumary }}"}),
    ]

    with pytest.raises(InputValidationError) as error:
        flow_create(
            user=owner,
            name="F",
            task_operations=steps,
            dependencies=[DependencyDraft(0, 1), DependencyDraft(1, 2), DependencyDraft(2, 3)],
        )

    assert _locations(error) == [
        (("body", "task_operations", 1, "parameters", "text"), "binding.unknown_output"),
        (("body", "task_operations", 3, "parameters", "template"), "binding.unknown_output"),
    ]
    assert error.value.items[0].msg == (
        "'{{ steps.0.result.txt }}' reads 'txt' of step 0, but 'Format Text' outputs only text."
    )


def test_a_definition_declaring_no_outputs_may_be_read_anywhere(owner):
    from apps.integrations.models import TaskDefinition

    TaskDefinition.objects.filter(id=task_definition("Extract Field").id).update(output_parameters=[])
    flow = flow_create(
        user=owner,
        name="F",
        task_operations=[
            _step(0, "Extract Field", parameters={"data": {"a": 1}, "path": "a"}),
            _step(1, parameters={"template": "{{ steps.0.result.anything.at.all }}"}),
        ],
        dependencies=[DependencyDraft(0, 1)],
    )

    assert flow.task_operations.count() == 2


def test_templates_may_read_upstream_steps_and_the_request(owner):
    flow = flow_create(
        user=owner,
        name="F",
        task_operations=[
            _step(0, parameters={"template": "{{ request.metadata.customer_email }}"}),
            _step(1),
            _step(2, parameters={"template": "{{ steps.0.result.text }} and {{ request.instructions }}"}),
        ],
        dependencies=[DependencyDraft(0, 1), DependencyDraft(1, 2)],
    )

    assert flow.task_operations.count() == 3


def test_an_update_makes_a_new_version_and_leaves_the_old_one_as_it_was(owner):
    flow = flow_create(
        user=owner, name="F", task_operations=[_step(0), _step(1), _step(2)], dependencies=[DependencyDraft(0, 1)]
    )
    first = flow.latest_version
    before = list(TaskOperation.objects.filter(flow_version=first).values())

    flow_update(
        user=owner, flow=flow, name="G", task_operations=[_step(0), _step(1)], dependencies=[DependencyDraft(1, 0)]
    )

    flow.refresh_from_db()
    assert flow.name == "G"
    assert flow.latest_version.number == 2
    assert list(TaskOperation.objects.filter(flow_version=first).values()) == before
    assert list(
        Dependency.objects.filter(flow_version=first).values_list("source_task_operation", "target_task_operation")
    ) == [(0, 1)]
    assert list(flow.task_operations.values_list("index", "sorted_index")) == [(0, 1), (1, 0)]
    assert list(flow.dependencies.values_list("source_task_operation", "target_task_operation")) == [(1, 0)]
    assert flow.latest_version.summary == "Step 2 removed; edge 1 -> 0 added; edge 0 -> 1 removed."
    assert flow.latest_version.created_by == owner


def test_an_invalid_update_changes_nothing(owner):
    flow = flow_create(user=owner, name="F", task_operations=[_step(0), _step(1)], dependencies=[DependencyDraft(0, 1)])

    with pytest.raises(InputValidationError):
        flow_update(user=owner, flow=flow, name="G", task_operations=[_step(0)], dependencies=[DependencyDraft(0, 1)])

    flow.refresh_from_db()
    assert flow.name == "F"
    assert flow.task_operations.count() == 2
    assert flow.versions.count() == 1


def test_a_foreign_organization_is_refused_like_an_unknown_one(owner, outsider_organization):
    with pytest.raises(InputValidationError) as error:
        flow_create(user=owner, name="F", task_operations=[_step(0)], organization=outsider_organization.id)

    assert _locations(error) == [(("body", "organization"), "not_found")]
