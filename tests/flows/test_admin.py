"""The flow admin goes through the flow services: what the API refuses with a 422 (a cycle, a bad binding, an unknown
task definition, a malformed step) is a form error here and saves nothing; what it accepts is saved by
``flow_create`` / ``flow_update``, with the same topological order and audit fields.

Personas: ``editor`` (staff with the flow permissions, a member of the owner's organization), ``superuser`` (a member
of no organization).
"""

import json
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from apps.accounts.models import User
from apps.core.exceptions import InputValidationError
from apps.flows.models import Flow, TaskOperation
from apps.runs.models import FlowRun
from tests.factories import FlowRunFactory, chain_flow, shared_organization, staff_user, task_definition
from tests.runs.flows import make_flow, step

pytestmark = pytest.mark.django_db

FLOWS = "/admin/flows/flow/"


@pytest.fixture
def editor(organization):
    return staff_user("editor@example.com", "view_flow", "add_flow", "change_flow", organizations=[organization])


@pytest.fixture
def editor_client(editor):
    client = Client()
    client.force_login(editor)
    return client


def format_step(index, **parameters):
    return {
        "index": index,
        "name": f"Step {index}",
        "task_definition": str(task_definition("Format Text").id),
        "instruction": "Say hello",
        "parameters": parameters or {"template": f"step {index}"},
    }


def edge(source, target):
    return {"source_task_operation": source, "target_task_operation": target}


def flow_form(organization=None, name="Refunds", steps=None, dependencies=None):
    form = {
        "name": name,
        "task_operations": json.dumps([format_step(0), format_step(1)] if steps is None else steps),
        "dependencies": json.dumps([edge(0, 1)] if dependencies is None else dependencies),
    }
    if organization is not None:
        form["organization"] = str(organization.id)
    return form


def form_errors(response):
    """The form's errors by field ("__all__" for the form's own), as Django rendered them."""
    assert response.status_code == 200, response.status_code
    return {
        field: [str(message) for message in messages]
        for field, messages in response.context["adminform"].form.errors.items()
    }


def test_a_cyclic_flow_is_a_form_error_and_saves_nothing(editor_client, organization):
    response = editor_client.post(f"{FLOWS}add/", flow_form(organization, dependencies=[edge(0, 1), edge(1, 0)]))

    errors = form_errors(response)
    assert list(errors) == ["dependencies"], errors
    assert "cycle" in errors["dependencies"][0].lower()
    assert not Flow.objects.exists()
    assert not TaskOperation.objects.exists()


# Each case builds its body when it runs: the catalogue is in the database, out of reach while tests are collected.
REFUSED = {
    "unknown parameter": (lambda: ([format_step(0, nope="x")], []), "task_operations", "has no parameter 'nope'"),
    "binding not upstream": (
        lambda: ([format_step(0), format_step(1, template="{{ steps.1.result.text }}")], [edge(0, 1)]),
        "task_operations",
        "does not run before step 1",
    ),
    "unknown task definition": (
        lambda: ([{**format_step(0), "task_definition": str(uuid.uuid4())}], []),
        "task_operations",
        "does not exist",
    ),
    "step without a name": (lambda: ([{"index": 0}], []), "task_operations", "required"),
    "no step": (lambda: ([], []), "task_operations", ""),
    "edge out of range": (lambda: ([format_step(0)], [edge(0, 7)]), "dependencies", ""),
    "duplicate edge": (lambda: ([format_step(0), format_step(1)], [edge(0, 1), edge(0, 1)]), "dependencies", ""),
    "steps not a list": (lambda: ({"not": "a list"}, []), "task_operations", "list"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_what_the_api_refuses_is_a_form_error(editor_client, organization, case):
    build, field, words = REFUSED[case]
    steps, dependencies = build()

    response = editor_client.post(f"{FLOWS}add/", flow_form(organization, steps=steps, dependencies=dependencies))

    errors = form_errors(response)
    assert field in errors, errors
    assert words in " ".join(errors[field])
    assert not Flow.objects.exists()


def test_json_too_deep_or_not_json_is_a_form_error_not_a_500(editor_client, organization):
    deep = "[" * 5000 + "]" * 5000
    for text in (deep, "{not json", '["\\u0000"]'):
        response = editor_client.post(f"{FLOWS}add/", {**flow_form(organization), "task_operations": text})
        assert "task_operations" in form_errors(response)
    assert not Flow.objects.exists()


def test_a_valid_flow_is_saved_by_the_service(editor_client, editor, organization):
    response = editor_client.post(
        f"{FLOWS}add/",
        flow_form(organization, steps=[format_step(0), format_step(1), format_step(2)], dependencies=[edge(2, 0)]),
    )

    assert response.status_code == 302
    flow = Flow.objects.get()
    assert (flow.name, flow.organization, flow.created_by_email) == ("Refunds", organization, editor.email)
    assert response.url == FLOWS
    order = dict(flow.task_operations.values_list("index", "sorted_index"))
    assert order[2] < order[0]  # the service's topological order: 2 runs before 0
    assert list(flow.dependencies.values_list("source_task_operation", "target_task_operation")) == [(2, 0)]


def test_the_organization_must_be_one_of_the_users(editor_client, organization, outsider_organization, editor):
    team = shared_organization(editor)

    page = editor_client.get(f"{FLOWS}add/")
    choices = {str(choice) for choice in page.context["adminform"].form.fields["organization"].queryset}
    response = editor_client.post(f"{FLOWS}add/", flow_form(outsider_organization))

    assert choices == {organization.name, team.name}
    assert "organization" in form_errors(response)
    assert not Flow.objects.exists()


def test_changing_a_flow_validates_the_whole_dag_like_the_api(editor_client, editor, owner, organization):
    flow = make_flow(owner, [step(0, "Format Text", template="a"), step(1, "Format Text", template="b")], [(0, 1)])
    page = editor_client.get(f"{FLOWS}{flow.id}/change/")
    shown = json.loads(page.context["adminform"].form["task_operations"].value())

    cyclic = editor_client.post(f"{FLOWS}{flow.id}/change/", flow_form(dependencies=[edge(0, 1), edge(1, 0)]))
    changed = editor_client.post(
        f"{FLOWS}{flow.id}/change/", flow_form(name="Renamed", steps=[format_step(0)], dependencies=[])
    )

    assert [item["index"] for item in shown] == [0, 1]
    assert shown[0]["parameters"] == {"template": "a"}
    assert "dependencies" in form_errors(cyclic)
    assert changed.status_code == 302
    flow.refresh_from_db()
    assert (flow.name, flow.organization, flow.modified_by_email) == ("Renamed", organization, editor.email)
    assert list(flow.task_operations.values_list("index", flat=True)) == [0]
    assert not flow.dependencies.exists()  # the latest version's edges; the one before keeps its own
    assert flow.latest_version.number == 2


def test_a_superuser_outside_the_organization_sees_the_flow_read_only(organization):
    flow = chain_flow(organization)
    client = Client()
    client.force_login(User.objects.create_superuser("root@example.com", "secret-password"))

    page = client.get(f"{FLOWS}{flow.id}/change/")
    post = client.post(f"{FLOWS}{flow.id}/change/", flow_form(name="Renamed"))

    assert page.status_code == 200
    assert page.context["title"] == "View flow"
    assert "step 0" in page.content.decode()  # the steps, shown as JSON
    assert post.status_code == 403
    flow.refresh_from_db()
    assert flow.name != "Renamed"


def test_a_refusal_at_save_time_rolls_back_and_is_reported_not_a_500(editor_client, organization, monkeypatch):
    """The form's check passed, then the service refused (as after a concurrent change): nothing is kept."""

    def refuse(**arguments):
        Flow.objects.create(organization=organization, name="half-written")
        raise InputValidationError.single(["body", "task_operations"], "Changed meanwhile.", "conflict")

    monkeypatch.setattr("apps.flows.admin.flow_create", refuse)

    response = editor_client.post(f"{FLOWS}add/", flow_form(organization), follow=True)

    assert response.status_code == 200
    assert "Nothing was saved: body.task_operations: Changed meanwhile." in [
        str(message) for message in response.context["messages"]
    ]
    assert not Flow.objects.exists()


def test_deleting_a_flow_goes_through_the_service(editor, editor_client, organization):
    editor.user_permissions.add(Permission.objects.get(codename="delete_flow"))
    flow = chain_flow(organization)
    flow_run = FlowRunFactory(organization=organization, flow=flow)  # kept: the delete is soft

    confirmation = editor_client.get(f"{FLOWS}{flow.id}/delete/")
    assert confirmation.status_code == 200 and not confirmation.context["perms_lacking"]
    assert not confirmation.context["protected"]

    response = editor_client.post(f"{FLOWS}{flow.id}/delete/", {"post": "yes"})

    assert response.status_code == 302
    flow.refresh_from_db()
    assert flow.deleted_at is not None  # deleted softly: its versions stay for the runs that executed them
    assert TaskOperation.objects.filter(flow=flow).exists()
    assert str(flow.id) not in editor_client.get(FLOWS).content.decode()
    assert FlowRun.objects.filter(id=flow_run.id, flow_version__flow=flow).exists()
