"""Flows as code: ``GET /api/v1/flows/export``, ``POST /api/v1/flows/import`` and ``manage.py flows export|import``.

A document names tasks by integration short_name and task name; exported and imported elsewhere (another
organization, or a deployment whose catalogue rows have other ids) it gives the same steps, edges and bindings.
"""

import io
import json
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from apps.flows.models import Flow, FlowVersion
from apps.integrations.models import Integration, TaskDefinition
from tests.factories import chain_flow, shared_organization, task_definition

pytestmark = pytest.mark.django_db

UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _flow_body(**overrides):
    body = {
        "name": "Greet and notify",
        "task_operations": [
            {
                "name": "Greet",
                "task_definition": str(task_definition("Format Text").id),
                "instruction": "Write a greeting",
                "index": 0,
                "x": 0,
                "y": 0,
                "parameters": {"values": {"name": "Zoë", "city": "Oslo"}, "template": "Hello {name}"},
            },
            {
                "name": "Notify",
                "task_definition": str(task_definition("Send Notification").id),
                "instruction": "Send it to Ann",
                "index": 1,
                "x": 240.5,
                "y": 0,
                "parameters": {"recipient": "ann@example.com", "message": "{{ steps.0.result.text }}"},
            },
        ],
        "dependencies": [{"source_task_operation": 0, "target_task_operation": 1, "instruction": "the greeting"}],
    }
    body.update(overrides)
    return body


def _document(**overrides):
    document = {
        "neena_flow": 1,
        "name": "Greet and notify",
        "steps": [
            {
                "index": 0,
                "name": "Greet",
                "task": {"integration": "core", "task": "Format Text"},
                "instruction": "Write a greeting",
                "parameters": {"template": "Hello"},
            },
            {
                "index": 1,
                "name": "Notify",
                "task": {"integration": "core", "task": "Send Notification"},
                "parameters": {"recipient": "ann@example.com", "message": "{{ steps.0.result.text }}"},
            },
        ],
        "dependencies": [{"source_task_operation": 0, "target_task_operation": 1}],
    }
    document.update(overrides)
    return document


def _steps(flow_body):
    """What a flow's answer says about its steps and edges, without ids, dates and emails."""
    steps = [
        {key: step[key] for key in ("index", "name", "task_definition", "instruction", "x", "y", "parameters")}
        for step in flow_body["task_operations"]
    ]
    edges = [
        {key: edge[key] for key in ("source_task_operation", "target_task_operation", "instruction")}
        for edge in flow_body["dependencies"]
    ]
    return steps, edges


def _definition_copy(definition):
    """The same task as another deployment's catalogue holds it: the same integration and name, another id."""
    TaskDefinition.objects.filter(id=definition.id).update(python_method_name=f"old_{definition.python_method_name}")
    definition.refresh_from_db()
    copy = TaskDefinition.objects.get(id=definition.id)
    copy.pk = None
    copy.python_method_name = definition.python_method_name.removeprefix("old_")
    copy.save()
    TaskDefinition.objects.filter(id=definition.id).update(deleted_at="2026-01-01T00:00:00Z")
    return copy


# --- export ----------------------------------------------------------------------------------------------------


def test_export_names_tasks_and_holds_no_ids(api):
    created = api.post("/api/v1/flows/", _flow_body(), format="json").json()

    response = api.get(f"/api/v1/flows/export?id={created['id']}")

    assert response.status_code == 200
    assert not UUID_PATTERN.search(response.content.decode())
    assert response.json() == {
        "dependencies": [{"instruction": "the greeting", "source_task_operation": 0, "target_task_operation": 1}],
        "name": "Greet and notify",
        "neena_flow": 1,
        "steps": [
            {
                "index": 0,
                "instruction": "Write a greeting",
                "name": "Greet",
                "parameters": {"template": "Hello {name}", "values": {"city": "Oslo", "name": "Zoë"}},
                "task": {"integration": "core", "task": "Format Text"},
                "x": 0.0,
                "y": 0.0,
            },
            {
                "index": 1,
                "instruction": "Send it to Ann",
                "name": "Notify",
                "parameters": {"message": "{{ steps.0.result.text }}", "recipient": "ann@example.com"},
                "task": {"integration": "core", "task": "Send Notification"},
                "x": 240.5,
                "y": 0.0,
            },
        ],
        "version": 1,
    }


def test_export_output_has_its_keys_sorted_at_every_depth(api):
    created = api.post("/api/v1/flows/", _flow_body(), format="json").json()

    text = api.get(f"/api/v1/flows/export?id={created['id']}").content.decode()

    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_export_of_a_version(api):
    created = api.post("/api/v1/flows/", _flow_body(), format="json").json()
    changed = _flow_body(id=created["id"])
    changed["task_operations"][1]["parameters"]["message"] = "Changed"
    api.put("/api/v1/flows/", changed, format="json")

    first = api.get(f"/api/v1/flows/export?id={created['id']}&version=1").json()
    latest = api.get(f"/api/v1/flows/export?id={created['id']}").json()

    assert (first["version"], latest["version"]) == (1, 2)
    assert first["steps"][1]["parameters"]["message"] == "{{ steps.0.result.text }}"
    assert latest["steps"][1]["parameters"]["message"] == "Changed"
    missing = api.get(f"/api/v1/flows/export?id={created['id']}&version=3")
    assert (missing.status_code, missing.json()["code"]) == (404, "version_not_found")


def test_export_of_another_organizations_or_a_deleted_flow_is_404(api, outsider_api, organization):
    flow = chain_flow(organization)

    assert outsider_api.get(f"/api/v1/flows/export?id={flow.id}").status_code == 404
    assert outsider_api.get(f"/api/v1/flows/export?id={flow.id}&version=1").status_code == 404
    api.delete(f"/api/v1/flows/?id={flow.id}")
    assert api.get(f"/api/v1/flows/export?id={flow.id}").status_code == 404


def test_export_needs_only_the_read_scope(owner, organization, make_client):
    flow = chain_flow(organization)

    assert make_client(owner, scopes=("read",)).get(f"/api/v1/flows/export?id={flow.id}").status_code == 200


# --- import ----------------------------------------------------------------------------------------------------


def test_round_trip_into_another_organization_gives_the_same_steps_and_bindings(api, outsider_api, outsider):
    created = api.post("/api/v1/flows/", _flow_body(), format="json").json()
    document = api.get(f"/api/v1/flows/export?id={created['id']}").json()

    response = outsider_api.post("/api/v1/flows/import", document, format="json")

    assert response.status_code == 200
    imported = response.json()
    assert imported["id"] != created["id"]
    assert imported["organization"] == str(outsider.memberships.get().organization_id)
    assert (imported["name"], imported["version"]) == ("Greet and notify", 1)
    assert _steps(imported) == _steps(created)
    assert outsider_api.get(f"/api/v1/flows/export?id={imported['id']}").json() == document


def test_round_trip_into_a_deployment_whose_catalogue_has_other_ids(api):
    created = api.post("/api/v1/flows/", _flow_body(), format="json").json()
    document = api.get(f"/api/v1/flows/export?id={created['id']}").json()
    format_text = _definition_copy(task_definition("Format Text"))

    response = api.post("/api/v1/flows/import", document, format="json")

    assert response.status_code == 200
    steps, edges = _steps(response.json())
    assert steps[0]["task_definition"] == str(format_text.id) != created["task_operations"][0]["task_definition"]
    assert steps[1]["task_definition"] == created["task_operations"][1]["task_definition"]
    expected_steps, expected_edges = _steps(created)
    assert [{**step, "task_definition": None} for step in steps] == [
        {**step, "task_definition": None} for step in expected_steps
    ]
    assert edges == expected_edges


def test_import_goes_to_the_organization_named(api, owner):
    team = shared_organization(owner)

    response = api.post("/api/v1/flows/import", _document(organization=str(team.id)), format="json")

    assert response.status_code == 200
    assert response.json()["organization"] == str(team.id)


def test_import_goes_to_the_header_organization_as_any_create(api, owner):
    # It went to the personal organization, ignoring X-Neena-Organization, while POST /flows/ honoured it.
    team = shared_organization(owner)

    response = api.post("/api/v1/flows/import", _document(), format="json", HTTP_X_NEENA_ORGANIZATION=str(team.id))

    assert response.status_code == 200
    assert response.json()["organization"] == str(team.id)


def test_import_into_the_header_organization_needs_its_member_role(api, owner):
    team = shared_organization(owner, role="viewer")

    response = api.post("/api/v1/flows/import", _document(), format="json", HTTP_X_NEENA_ORGANIZATION=str(team.id))

    assert response.status_code == 403
    assert response.json()["code"] == "role_required"
    assert not Flow.objects.filter(organization=team).exists()


def test_import_as_a_version_keeps_its_flow_whatever_the_header_says(api, owner, organization):
    flow = chain_flow(organization)
    team = shared_organization(owner)

    response = api.post(
        f"/api/v1/flows/import?flow_id={flow.id}", _document(), format="json", HTTP_X_NEENA_ORGANIZATION=str(team.id)
    )

    assert response.status_code == 200
    assert response.json()["organization"] == str(organization.id)


def test_import_of_unknown_tasks_is_one_422_naming_each(api):
    document = _document()
    document["steps"][0]["task"] = {"integration": "core", "task": "Format Txt"}
    document["steps"][1]["task"] = {"integration": "nowhere", "task": "Send Notification"}

    response = api.post("/api/v1/flows/import", document, format="json")

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [item["loc"] for item in detail] == [["body", "steps", 0, "task"], ["body", "steps", 1, "task"]]
    assert {item["type"] for item in detail} == {"task_definition.not_found"}
    assert "'Format Txt'" in detail[0]["msg"] and "'core'" in detail[0]["msg"]
    assert "'Send Notification'" in detail[1]["msg"] and "'nowhere'" in detail[1]["msg"]
    assert not Flow.objects.exists()


@pytest.mark.parametrize("removed", ["task", "integration"])
def test_import_of_a_task_removed_from_the_catalogue_is_422(api, removed):
    notify = task_definition("Send Notification")
    rows = (
        TaskDefinition.objects.filter(id=notify.id)
        if removed == "task"
        else Integration.objects.filter(short_name="core")
    )
    rows.update(deleted_at="2026-01-01T00:00:00Z")

    response = api.post("/api/v1/flows/import", _document(), format="json")

    assert response.status_code == 422
    expected = (
        [["body", "steps", 1, "task"]]
        if removed == "task"
        else [["body", "steps", 0, "task"], ["body", "steps", 1, "task"]]
    )
    assert [item["loc"] for item in response.json()["detail"]] == expected


@pytest.mark.parametrize(
    ("change", "location", "kind"),
    [
        ({"neena_flow": 2}, ["body", "neena_flow"], "document_format"),
        ({"neena_flow": None}, ["body", "neena_flow"], "null"),
        ({"steps": []}, ["body", "steps"], "min_length"),
        ({"task_operations": []}, ["body", "task_operations"], "unknown_field"),
        ({"version": 0}, ["body", "version"], "min_value"),
    ],
)
def test_a_bad_document_is_422_at_its_place(api, change, location, kind):
    response = api.post("/api/v1/flows/import", _document(**change), format="json")

    assert response.status_code == 422
    assert {"loc": location, "type": kind} in [
        {"loc": item["loc"], "type": item["type"]} for item in response.json()["detail"]
    ]
    assert not Flow.objects.exists()


def test_a_missing_marker_and_unknown_step_fields_are_422(api):
    document = _document()
    del document["neena_flow"]
    document["steps"][0]["task_definition"] = str(task_definition("Format Text").id)
    document["steps"][1]["task"]["version"] = 2

    response = api.post("/api/v1/flows/import", document, format="json")

    assert response.status_code == 422
    assert sorted((item["loc"], item["type"]) for item in response.json()["detail"]) == [
        (["body", "neena_flow"], "required"),
        (["body", "steps", 0, "task_definition"], "unknown_field"),
        (["body", "steps", 1, "task", "version"], "unknown_field"),
    ]


def test_the_flows_validation_is_reported_at_its_place_in_the_document(api):
    document = _document(dependencies=[{"source_task_operation": 1, "target_task_operation": 0}])
    document["steps"][0]["parameters"] = {"no_such_parameter": "x"}

    response = api.post("/api/v1/flows/import", document, format="json")

    assert response.status_code == 422
    assert ["body", "steps", 0, "parameters", "no_such_parameter"] in [
        item["loc"] for item in response.json()["detail"]
    ]


def test_import_is_bounded_like_flow_creation(api):
    step = _document()["steps"][0]
    document = _document(steps=[{**step, "index": min(index, 999)} for index in range(1001)], dependencies=[])

    response = api.post("/api/v1/flows/import", document, format="json")

    assert response.status_code == 422
    assert (["body", "steps"], "max_length") in [(item["loc"], item["type"]) for item in response.json()["detail"]]


def test_import_as_a_new_version_of_a_flow_and_a_no_op_import_makes_none(api):
    created = api.post("/api/v1/flows/", _flow_body(), format="json").json()
    document = api.get(f"/api/v1/flows/export?id={created['id']}").json()

    unchanged = api.post(f"/api/v1/flows/import?flow_id={created['id']}", document, format="json")
    document["steps"][1]["parameters"]["message"] = "Changed in git"
    changed = api.post(f"/api/v1/flows/import?flow_id={created['id']}", document, format="json")

    assert unchanged.status_code == 200
    assert unchanged.json()["version"] == 1
    assert changed.status_code == 200
    assert (changed.json()["id"], changed.json()["version"]) == (created["id"], 2)
    assert changed.json()["task_operations"][1]["parameters"]["message"] == "Changed in git"
    assert FlowVersion.objects.filter(flow_id=created["id"]).count() == 2


def test_import_into_another_organizations_flow_is_404(api, outsider_api, organization):
    flow = chain_flow(organization)

    response = outsider_api.post(f"/api/v1/flows/import?flow_id={flow.id}", _document(), format="json")

    assert response.status_code == 404
    assert FlowVersion.objects.filter(flow=flow).count() == 1


def test_import_as_a_version_cannot_move_the_flow(api, owner, organization):
    flow = chain_flow(organization)
    team = shared_organization(owner)

    response = api.post(f"/api/v1/flows/import?flow_id={flow.id}", _document(organization=str(team.id)), format="json")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "organization"]


def test_import_needs_the_write_scope(owner, make_client):
    response = make_client(owner, scopes=("read",)).post("/api/v1/flows/import", _document(), format="json")

    assert response.status_code == 403
    assert not Flow.objects.exists()


# --- manage.py flows -------------------------------------------------------------------------------------------


def test_command_export_writes_the_document_the_api_answers(api, tmp_path):
    created = api.post("/api/v1/flows/", _flow_body(), format="json").json()
    path = tmp_path / "flow.json"

    call_command("flows", "export", "--id", created["id"], "--output", str(path), stderr=io.StringIO())

    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == api.get(f"/api/v1/flows/export?id={created['id']}").json()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert "Zoë" in text


def test_command_export_of_a_version_to_standard_output(api):
    created = api.post("/api/v1/flows/", _flow_body(), format="json").json()
    changed = _flow_body(id=created["id"], name="Renamed")
    changed["task_operations"][0]["name"] = "Greet warmly"
    api.put("/api/v1/flows/", changed, format="json")
    output = io.StringIO()

    call_command("flows", "export", "--id", created["id"], "--version", "1", stdout=output)

    document = json.loads(output.getvalue())
    assert (document["version"], document["steps"][0]["name"], document["name"]) == (1, "Greet", "Renamed")


def test_command_import_round_trip_into_another_user(api, outsider, tmp_path):
    created = api.post("/api/v1/flows/", _flow_body(), format="json").json()
    path = tmp_path / "flow.json"
    call_command("flows", "export", "--id", created["id"], "--output", str(path), stderr=io.StringIO())
    output = io.StringIO()

    call_command("flows", "import", str(path), "--user", "OUTSIDER@example.com", stdout=output)

    flow = Flow.objects.get(organization__memberships__user=outsider)
    assert f"version 1 of flow {flow.id}" in output.getvalue()
    assert flow.current_version.created_by == outsider
    imported = api.get(f"/api/v1/flows/?id={created['id']}").json()
    steps = list(flow.current_version.task_operations.order_by("index").values("name", "task_definition", "parameters"))
    assert [(step["name"], str(step["task_definition"]), step["parameters"]) for step in steps] == [
        (step["name"], step["task_definition"], step["parameters"]) for step in imported["task_operations"]
    ]


def test_command_import_as_a_version_and_into_an_organization(api, owner, organization, tmp_path):
    flow = chain_flow(organization)
    team = shared_organization(owner)
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(_document()), encoding="utf-8")

    call_command("flows", "import", str(path), "--user", owner.email, "--flow", str(flow.id), stdout=io.StringIO())
    call_command(
        "flows", "import", str(path), "--user", owner.email, "--organization", str(team.id), stdout=io.StringIO()
    )

    flow.refresh_from_db()
    assert flow.current_version.number == 2
    assert Flow.objects.get(organization=team).name == "Greet and notify"


def test_command_import_reads_standard_input(owner, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(_document(name="From a pipe"))))

    call_command("flows", "import", "-", "--user", owner.email, stdout=io.StringIO())

    assert Flow.objects.get().name == "From a pipe"


def test_command_import_of_an_unknown_task_prints_each_problem_and_fails(owner, tmp_path):
    document = _document()
    document["steps"][1]["task"]["task"] = "Send Carrier Pigeon"
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(document), encoding="utf-8")

    with pytest.raises(CommandError) as raised:
        call_command("flows", "import", str(path), "--user", owner.email)

    assert "steps.1.task: Unknown task 'Send Carrier Pigeon' of integration 'core'" in str(raised.value)
    assert not Flow.objects.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not a JSON document"),
        (json.dumps({"name": "x"}), "neena_flow:"),
        (json.dumps([1, 2]), "The document was not imported"),
    ],
)
def test_command_import_of_a_bad_file_fails_clearly(owner, tmp_path, content, message):
    path = tmp_path / "flow.json"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(CommandError, match=message):
        call_command("flows", "import", str(path), "--user", owner.email)


def test_command_errors_for_unknown_users_flows_and_files(owner, outsider, organization, tmp_path):
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(_document()), encoding="utf-8")
    flow = chain_flow(organization)

    with pytest.raises(CommandError, match="No active user"):
        call_command("flows", "import", str(path), "--user", "nobody@example.com")
    with pytest.raises(CommandError, match="not found"):
        call_command("flows", "import", str(path), "--user", outsider.email, "--flow", str(flow.id))
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("flows", "import", str(tmp_path / "missing.json"), "--user", owner.email)
    with pytest.raises(CommandError, match="Flow not found"):
        call_command("flows", "export", "--id", "00000000-0000-0000-0000-000000000000")
    with pytest.raises(CommandError, match="Not an id"):
        call_command("flows", "export", "--id", "nope")
    assert Flow.objects.count() == 1


def test_the_readmes_example_document_imports_and_exports_unchanged(api):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Flows as code", 1)[1]
    example = json.loads(section.split("```json", 1)[1].split("```", 1)[0])

    response = api.post("/api/v1/flows/import", example, format="json")

    assert response.status_code == 200, response.content
    assert api.get(f"/api/v1/flows/export?id={response.json()['id']}").json() == example


def test_a_flow_with_a_long_name_exports_and_imports(api, outsider_api):
    """Flow names may be NAME_MAX_LENGTH characters (the original frontend's 'Flow for <request>'): the export of
    such a flow must import, into a new flow and as the next version of its own."""
    name = "Flow for " + "a very long request name" * 40
    created = api.post("/api/v1/flows/", _flow_body(name=name), format="json")
    assert created.status_code == 200
    document = api.get(f"/api/v1/flows/export?id={created.json()['id']}").json()

    imported = outsider_api.post("/api/v1/flows/import", document, format="json")
    again = api.post(f"/api/v1/flows/import?flow_id={created.json()['id']}", document, format="json")

    assert imported.status_code == 200, imported.json()
    assert imported.json()["name"] == name
    assert again.status_code == 200, again.json()
    assert again.json()["version"] == 1
