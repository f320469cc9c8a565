"""``/api/v1/flow_requests/`` and ``/api/v1/flows/``: shapes, PUT with id in the body, DELETE returning the object,
newest-first lists, 422 details, 409 for a flow that runs still refer to."""

import pytest

from apps.flows.models import Flow, FlowRequest
from tests.factories import FlowRequestFactory, FlowRunFactory, chain_flow, task_definition

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
    assert not FlowRequest.objects.exists()
    assert api.get(f"/api/v1/flow_requests/?id={flow_request.id}").status_code == 404


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
    assert [op["id"] for op in response.json()["task_operations"]] == [op["id"] for op in created["task_operations"]]


def test_read_list_and_delete_flow(api, organization):
    flow = chain_flow(organization, steps=3)

    read = api.get(f"/api/v1/flows/?id={flow.id}")
    listed = api.get("/api/v1/flows/all").json()
    deleted = api.delete(f"/api/v1/flows/?id={flow.id}")

    assert [op["index"] for op in read.json()["task_operations"]] == [0, 1, 2]
    assert [item["id"] for item in listed] == [str(flow.id)]
    assert deleted.json() == read.json()
    assert not Flow.objects.exists()


def test_deleting_a_flow_that_has_runs_is_409(api, organization):
    run = FlowRunFactory(organization=organization)

    response = api.delete(f"/api/v1/flows/?id={run.flow_id}")

    assert response.status_code == 409
    assert response.json()["code"] == "protected"
    assert Flow.objects.filter(id=run.flow_id).exists()
