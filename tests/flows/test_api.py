"""``/api/v1/flow_requests/`` and ``/api/v1/flows/``: shapes, PUT with id in the body, DELETE returning the object
(and keeping the history of runs), newest-first lists, 422 details, versions and their diff."""

import pytest

from apps.flows.models import Flow, FlowRequest
from tests.factories import FlowRequestFactory, FlowRunFactory, chain_flow, shared_organization, task_definition

pytestmark = pytest.mark.django_db

AUDIT = {"created_date", "modified_date", "created_by_email", "modified_by_email"}


def _flow_body(**overrides):
    format_text = str(task_definition("Format Text").id)
    notify = str(task_definition("Send Notification").id)
    body = {
        "name": "Greet and notify",
        "task_operations": [
            {
                "name": "Greet",
                "task_definition": format_text,
                "instruction": "Write a greeting",
                "index": 0,
                "parameters": {"template": "Hello {name}", "values": {"name": "Ann"}},
            },
            {
                "name": "Notify",
                "task_definition": notify,
                "instruction": "Send it to Ann",
                "index": 1,
                "x": 10.5,
                "y": 3,
                "parameters": {"recipient": "ann@example.com", "message": "{{ steps.0.result.text }}"},
            },
        ],
        "dependencies": [{"source_task_operation": 0, "target_task_operation": 1, "instruction": "the greeting"}],
    }
    body.update(overrides)
    return body


# --- flow requests -------------------------------------------------------------------------------------------


def test_create_flow_request_returns_the_documented_shape(api, owner, organization):
    response = api.post(
        "/api/v1/flow_requests/",
        {"request_instructions": "Process this request.", "request_metadata": [{"key": "value"}], "request_name": "R"},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["request_instructions"] == "Process this request."
    assert body["request_metadata"] == [{"key": "value"}]
    assert body["request_name"] == "R"
    assert body["flow"] is None
    assert body["organization"] == str(organization.id)
    assert body["created_by_email"] == body["modified_by_email"] == owner.email
    assert set(body) >= AUDIT


def test_flow_request_metadata_may_be_an_object(api):
    response = api.post(
        "/api/v1/flow_requests/",
        {"request_instructions": "x", "request_metadata": {"customer_email": "ann@example.com"}},
        format="json",
    )

    assert response.json()["request_metadata"] == {"customer_email": "ann@example.com"}


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({}, ["body", "request_instructions"]),
        ({"request_instructions": ""}, ["body", "request_instructions"]),
        ({"request_instructions": "x", "request_metadata": [1, 2]}, ["body", "request_metadata"]),
        ({"request_instructions": "x", "request_metadata": {"k": "a\u0000b"}}, ["body", "request_metadata", "k"]),
        ({"request_instructions": "x", "flow": "not-a-uuid"}, ["body", "flow"]),
        ({"request_instructions": "x", "flow": "00000000-0000-0000-0000-000000000000"}, ["body", "flow"]),
    ],
)
def test_invalid_flow_request_is_422_with_location(api, body, location):
    response = api.post("/api/v1/flow_requests/", body, format="json")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == location
    assert not FlowRequest.objects.exists()


def test_update_flow_request_with_id_in_body(api, organization, teammate):
    flow = chain_flow(organization)
    flow_request = FlowRequestFactory(organization=organization)

    response = api.put(
        "/api/v1/flow_requests/",
        {"id": str(flow_request.id), "request_instructions": "Updated.", "flow": str(flow.id)},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["request_instructions"] == "Updated."
    assert response.json()["flow"] == str(flow.id)
    assert response.json()["modified_by_email"] == "owner@example.com"


def test_update_unknown_flow_request_is_404(api):
    response = api.put(
        "/api/v1/flow_requests/",
        {"id": "00000000-0000-0000-0000-000000000000", "request_instructions": "x"},
        format="json",
    )

    assert response.status_code == 404


def test_read_and_delete_flow_request(api, organization):
    flow_request = FlowRequestFactory(organization=organization)

    read = api.get(f"/api/v1/flow_requests/?id={flow_request.id}")
    deleted = api.delete(f"/api/v1/flow_requests/?id={flow_request.id}")

    assert read.status_code == 200
    assert deleted.status_code == 200
    assert deleted.json() == read.json()
    assert FlowRequest.objects.get(id=flow_request.id).deleted_at is not None
    assert api.get(f"/api/v1/flow_requests/?id={flow_request.id}").status_code == 404
    assert api.get("/api/v1/flow_requests/all").json() == []
    assert api.delete(f"/api/v1/flow_requests/?id={flow_request.id}").status_code == 404


def test_deleting_a_flow_request_that_has_runs_keeps_the_runs(api, organization):
    run = FlowRunFactory(organization=organization)

    response = api.delete(f"/api/v1/flow_requests/?id={run.flow_request_id}")

    assert response.status_code == 200
    assert response.json()["id"] == str(run.flow_request_id)
    assert api.get(f"/api/v1/flow_runs/?id={run.id}").json()["flow_request"] == str(run.flow_request_id)
    executed = api.post(f"/api/v1/flows/execute?flow_id={run.flow_id}&flow_request_id={run.flow_request_id}")
    assert executed.status_code == 404


def test_teammates_share_the_organizations_objects(teammate_api, organization):
    flow_request = FlowRequestFactory(organization=organization)

    assert teammate_api.get(f"/api/v1/flow_requests/?id={flow_request.id}").status_code == 200


def test_list_is_newest_first_and_paged(api, organization):
    created = [FlowRequestFactory(organization=organization) for _ in range(5)]

    everything = api.get("/api/v1/flow_requests/all").json()
    page = api.get("/api/v1/flow_requests/all?skip=1&limit=2").json()

    assert [item["id"] for item in everything] == [str(item.id) for item in reversed(created)]
    assert [item["id"] for item in page] == [str(created[3].id), str(created[2].id)]


# --- flows ---------------------------------------------------------------------------------------------------


def test_create_flow_returns_the_documented_shape(api, organization):
    response = api.post("/api/v1/flows/", _flow_body(), format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Greet and notify"
    assert body["organization"] == str(organization.id)
    assert AUDIT | {"id", "task_operations", "dependencies"} <= set(body)
    first, second = body["task_operations"]
    assert {key: first[key] for key in ("name", "index", "sorted_index", "x", "y", "flow")} == {
        "name": "Greet",
        "index": 0,
        "sorted_index": 0,
        "x": None,
        "y": None,
        "flow": body["id"],
    }
    assert second["x"] == 10.5
    assert second["parameters"]["message"] == "{{ steps.0.result.text }}"
    assert AUDIT | {"id", "task_definition", "instruction"} <= set(first)
    (dependency,) = body["dependencies"]
    assert {key: dependency[key] for key in ("source_task_operation", "target_task_operation", "instruction")} == {
        "source_task_operation": 0,
        "target_task_operation": 1,
        "instruction": "the greeting",
    }
    assert AUDIT | {"id", "flow"} <= set(dependency)


@pytest.mark.parametrize(
    ("dependencies", "location", "kind"),
    [
        (
            [{"source_task_operation": 0, "target_task_operation": 9}],
            ["body", "dependencies", 0, "target_task_operation"],
            "dag.index_out_of_range",
        ),
        ([{"source_task_operation": 1, "target_task_operation": 1}], ["body", "dependencies", 0], "dag.self_loop"),
        (
            [
                {"source_task_operation": 0, "target_task_operation": 1},
                {"source_task_operation": 0, "target_task_operation": 1},
            ],
            ["body", "dependencies", 1],
            "dag.duplicate_edge",
        ),
        (
            [
                {"source_task_operation": 0, "target_task_operation": 1},
                {"source_task_operation": 1, "target_task_operation": 0},
            ],
            ["body", "dependencies"],
            "dag.cycle",
        ),
    ],
)
def test_invalid_dag_is_422_naming_the_problem(api, dependencies, location, kind):
    response = api.post("/api/v1/flows/", _flow_body(dependencies=dependencies), format="json")

    assert response.status_code == 422
    assert [(item["loc"], item["type"]) for item in response.json()["detail"]] == [(location, kind)]
    assert not Flow.objects.exists()


def test_missing_fields_are_all_reported(api):
    response = api.post("/api/v1/flows/", {"task_operations": [{"index": 0}]}, format="json")

    assert response.status_code == 422
    assert {tuple(item["loc"]) for item in response.json()["detail"]} == {
        ("body", "name"),
        ("body", "task_operations", 0, "name"),
        ("body", "task_operations", 0, "task_definition"),
    }


def test_update_flow_with_id_in_body(api):
    created = api.post("/api/v1/flows/", _flow_body(), format="json").json()
    body = _flow_body(name="Renamed", id=created["id"], dependencies=[])
    body["task_operations"][1]["parameters"] = {}

    response = api.put("/api/v1/flows/", body, format="json")

    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"
    assert response.json()["dependencies"] == []
    assert response.json()["version"] == response.json()["latest_version"] == 2
    # The new version has its own steps: version 1's are kept as they were.
    assert [op["index"] for op in response.json()["task_operations"]] == [0, 1]
    assert {op["id"] for op in response.json()["task_operations"]}.isdisjoint(
        op["id"] for op in created["task_operations"]
    )
    assert (
        api.get(f"/api/v1/flows/?id={created['id']}&version=1").json()["task_operations"] == created["task_operations"]
    )


def test_read_list_and_delete_flow(api, organization):
    flow = chain_flow(organization, steps=3)

    read = api.get(f"/api/v1/flows/?id={flow.id}")
    listed = api.get("/api/v1/flows/all").json()
    deleted = api.delete(f"/api/v1/flows/?id={flow.id}")

    assert [op["index"] for op in read.json()["task_operations"]] == [0, 1, 2]
    assert [item["id"] for item in listed] == [str(flow.id)]
    assert deleted.json() == read.json()
    assert Flow.objects.get(id=flow.id).deleted_at is not None
    assert api.get("/api/v1/flows/all").json() == []
    for url in (
        f"/api/v1/flows/?id={flow.id}",
        f"/api/v1/flows/?id={flow.id}&version=1",
        f"/api/v1/flows/versions?flow_id={flow.id}",
        f"/api/v1/flows/diff?flow_id={flow.id}&from=1&to=1",
    ):
        assert api.get(url).status_code == 404, url
    assert api.delete(f"/api/v1/flows/?id={flow.id}").status_code == 404


def test_deleting_a_flow_that_has_runs_keeps_their_history(api, organization):
    run = FlowRunFactory(organization=organization)
    before = api.get(f"/api/v1/flow_runs/?id={run.id}").json()

    response = api.delete(f"/api/v1/flows/?id={run.flow_id}")

    assert response.status_code == 200
    assert api.get(f"/api/v1/flow_runs/?id={run.id}").json() == before
    assert before["flow_version"] == 1
    assert [item["id"] for item in api.get(f"/api/v1/flow_runs/all_for_flow_id?flow_id={run.flow_id}").json()] == [
        str(run.id)
    ]
    assert api.get(f"/api/v1/flow_runs/with_flow_result?id={run.id}").status_code == 200
    rerun = api.post(f"/api/v1/flow_runs/rerun?flow_run_id={run.id}")
    assert (rerun.status_code, rerun.json()["code"]) == (409, "flow_deleted")
    executed = api.post(f"/api/v1/flows/execute?flow_id={run.flow_id}&flow_request_id={run.flow_request_id}")
    assert executed.status_code == 404


# --- versions --------------------------------------------------------------------------------------------------


def _put(api, created, **overrides):
    body = _flow_body(id=created["id"], **overrides)
    return api.put("/api/v1/flows/", body, format="json")


def test_a_new_flow_is_version_1(api, owner):
    created = api.post("/api/v1/flows/", _flow_body(), format="json").json()

    assert created["version"] == created["latest_version"] == 1
    (version,) = api.get(f"/api/v1/flows/versions?flow_id={created['id']}").json()
    assert version["number"] == 1
    assert version["created_by_email"] == owner.email
    assert version["summary"] == "Created with 2 steps and 1 edge."
    assert version["flow"] == created["id"]


def test_a_put_that_changes_nothing_makes_no_version_and_a_rename_only_renames(api):
    created = api.post("/api/v1/flows/", _flow_body(), format="json").json()

    same = _put(api, created).json()
    renamed = _put(api, created, name="Another name").json()

    assert same["version"] == renamed["version"] == 1
    assert renamed["name"] == "Another name"
    assert renamed["task_operations"] == created["task_operations"]
    assert len(api.get(f"/api/v1/flows/versions?flow_id={created['id']}").json()) == 1


def test_each_change_makes_the_next_version_and_every_version_stays_readable(api, teammate_api, teammate):
    created = api.post("/api/v1/flows/", _flow_body(), format="json").json()
    body = _flow_body(id=created["id"])
    body["task_operations"][1]["parameters"]["message"] = "Hello!"
    second = teammate_api.put("/api/v1/flows/", body, format="json").json()
    body["task_operations"][0]["x"] = 240.0
    third = api.put("/api/v1/flows/", body, format="json").json()

    assert (second["version"], third["version"]) == (2, 3)
    versions = api.get(f"/api/v1/flows/versions?flow_id={created['id']}").json()
    assert [(version["number"], version["summary"]) for version in versions] == [
        (3, "Step 0: position."),
        (2, "Step 1: parameters message."),
        (1, "Created with 2 steps and 1 edge."),
    ]
    assert versions[1]["created_by_email"] == teammate.email
    assert api.get("/api/v1/flows/versions?flow_id=" + created["id"] + "&limit=1").json() == versions[:1]
    shown = {number: api.get(f"/api/v1/flows/?id={created['id']}&version={number}").json() for number in (1, 2, 3)}
    assert [shown[number]["version"] for number in (1, 2, 3)] == [1, 2, 3]
    assert {shown[number]["latest_version"] for number in (1, 2, 3)} == {3}
    assert shown[1]["task_operations"][1]["parameters"]["message"] == "{{ steps.0.result.text }}"
    assert shown[2]["task_operations"][1]["parameters"]["message"] == "Hello!"
    assert shown[3] == api.get(f"/api/v1/flows/?id={created['id']}").json()


@pytest.mark.parametrize(("before", "after"), [(1, True), (0, False), (1, 1.0), ({"n": 1}, {"n": True})])
def test_a_binding_that_changes_its_json_type_makes_a_version(api, before, after):
    """Python finds 1 == True == 1.0, JSON does not: a binding edited from one to the other is a change, saved as the
    next version, never dropped as "nothing changed"."""
    created = api.post("/api/v1/flows/", _flow_body(), format="json").json()
    body = _flow_body(id=created["id"])
    body["task_operations"][0]["parameters"]["values"] = {"name": before}
    first = api.put("/api/v1/flows/", body, format="json").json()
    body["task_operations"][0]["parameters"]["values"] = {"name": after}

    second = api.put("/api/v1/flows/", body, format="json").json()

    assert second["version"] == first["version"] + 1
    assert second["task_operations"][0]["parameters"]["values"] == {"name": after}
    assert type(second["task_operations"][0]["parameters"]["values"]["name"]) is type(after)


def test_an_unknown_version_is_404(api):
    created = api.post("/api/v1/flows/", _flow_body(), format="json").json()

    response = api.get(f"/api/v1/flows/?id={created['id']}&version=2")
    diff = api.get(f"/api/v1/flows/diff?flow_id={created['id']}&from=1&to=7")

    assert (response.status_code, response.json()["code"]) == (404, "version_not_found")
    assert (diff.status_code, diff.json()["code"]) == (404, "version_not_found")
    assert api.get(f"/api/v1/flows/?id={created['id']}&version=0").status_code == 422


def test_the_diff_names_the_changed_operations_parameters_and_edges(api):
    created = api.post("/api/v1/flows/", _flow_body(), format="json").json()
    summarize = str(task_definition("Summarize Text").id)
    body = _flow_body(id=created["id"])
    body["task_operations"][0]["name"] = "Greet warmly"
    body["task_operations"][0]["parameters"] = {"template": "Hi {name}"}
    body["task_operations"].append(
        {"name": "Shorten", "task_definition": summarize, "index": 2, "parameters": {"max_sentences": 1}}
    )
    body["dependencies"] = [
        {"source_task_operation": 0, "target_task_operation": 1, "instruction": "the warm greeting"},
        {"source_task_operation": 0, "target_task_operation": 2, "instruction": "the text"},
    ]
    updated = api.put("/api/v1/flows/", body, format="json").json()

    diff = api.get(f"/api/v1/flows/diff?flow_id={created['id']}&from=1&to=2").json()

    assert updated["version"] == 2
    assert (diff["flow_id"], diff["from_version"], diff["to_version"]) == (created["id"], 1, 2)
    assert diff["task_operations"]["added"] == [
        {
            "index": 2,
            "task_definition": summarize,
            "name": "Shorten",
            "instruction": "",
            "x": None,
            "y": None,
            "parameters": {"max_sentences": 1},
        }
    ]
    assert diff["task_operations"]["removed"] == []
    assert diff["task_operations"]["changed"] == [
        {
            "index": 0,
            "fields": {"name": {"before": "Greet", "after": "Greet warmly"}},
            "parameters": {
                "added": {},
                "removed": {"values": {"name": "Ann"}},
                "changed": {"template": {"before": "Hello {name}", "after": "Hi {name}"}},
            },
        }
    ]
    assert diff["dependencies"] == {
        "added": [{"source_task_operation": 0, "target_task_operation": 2, "instruction": "the text"}],
        "removed": [],
        "changed": [
            {
                "source_task_operation": 0,
                "target_task_operation": 1,
                "instruction": {"before": "the greeting", "after": "the warm greeting"},
            }
        ],
    }
    (latest, _) = api.get(f"/api/v1/flows/versions?flow_id={created['id']}").json()
    assert latest["summary"] == (
        "Step 0: name, parameters template, values; step 2 added (Summarize Text); edge 0 -> 2 added; "
        "edge 0 -> 1: instruction."
    )
    reverse = api.get(f"/api/v1/flows/diff?flow_id={created['id']}&from=2&to=1").json()
    assert [step["index"] for step in reverse["task_operations"]["removed"]] == [2]
    assert reverse["dependencies"]["removed"] == diff["dependencies"]["added"]
    empty = api.get(f"/api/v1/flows/diff?flow_id={created['id']}&from=2&to=2").json()
    assert not any(empty["task_operations"].values()) and not any(empty["dependencies"].values())


def test_a_changed_task_is_named_in_the_summary(api):
    created = api.post("/api/v1/flows/", _flow_body(), format="json").json()
    body = _flow_body(id=created["id"])
    body["task_operations"][1]["task_definition"] = str(task_definition("Format Text").id)
    body["task_operations"][1]["parameters"] = {"template": "{{ steps.0.result.text }}"}

    api.put("/api/v1/flows/", body, format="json")

    (latest, _) = api.get(f"/api/v1/flows/versions?flow_id={created['id']}").json()
    assert latest["summary"] == (
        "Step 1: task Send Notification -> Format Text, parameters message, recipient, template."
    )


def test_a_flows_organization_cannot_change(api, owner, organization):
    created = api.post("/api/v1/flows/", _flow_body(), format="json").json()
    other = shared_organization(owner)

    moved = _put(api, created, organization=str(other.id))
    kept = _put(api, created, organization=str(organization.id), name="Same place")

    assert moved.status_code == 422
    assert [(item["loc"], item["type"]) for item in moved.json()["detail"]] == [
        (["body", "organization"], "organization_immutable")
    ]
    assert kept.status_code == 200
    assert Flow.objects.get(id=created["id"]).organization_id == organization.id


def test_versions_and_diff_of_another_organizations_flow_are_404(api, outsider_api):
    created = api.post("/api/v1/flows/", _flow_body(), format="json").json()

    assert outsider_api.get(f"/api/v1/flows/versions?flow_id={created['id']}").status_code == 404
    assert outsider_api.get(f"/api/v1/flows/diff?flow_id={created['id']}&from=1&to=1").status_code == 404
    assert outsider_api.get(f"/api/v1/flows/?id={created['id']}&version=1").status_code == 404
