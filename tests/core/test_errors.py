"""The error contract: JSON everywhere, 413 before parsing, 422 for malformed JSON, JSON 404 for unknown paths."""

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_malformed_json_is_422_at_body(api):
    response = api.generic("POST", "/api/v1/flow_requests/", "{not json", content_type="application/json")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body"]
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_non_object_body_is_422(api):
    response = api.post("/api/v1/flow_requests/", [1, 2], format="json")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body"]


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
def test_oversized_body_is_413(api):
    response = api.post("/api/v1/flow_requests/", {"request_instructions": "x" * 200}, format="json")

    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


def test_unknown_path_is_json_404(api):
    response = api.get("/api/v1/nothing-here/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_unsupported_method_is_405_json(api):
    response = api.patch("/api/v1/flow_requests/", {}, format="json")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


@pytest.mark.parametrize("query", ["", "?id=", "?id=not-a-uuid"])
def test_missing_or_malformed_id_is_422_at_query(api, query):
    response = api.get(f"/api/v1/flow_requests/{query}")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "id"]


@pytest.mark.parametrize("query", ["skip=-1", "limit=0", "limit=1001", "skip=abc", f"skip={2**63}", "limit=", "skip="])
def test_bad_pagination_is_422_at_query(api, query):
    response = api.get(f"/api/v1/flow_requests/all?{query}")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "query"


def test_allow_header_does_not_advertise_options(api):
    response = api.patch("/api/v1/flow_requests/", {}, format="json")

    assert "OPTIONS" not in response.headers["Allow"]
    assert api.options("/api/v1/flow_requests/").status_code == 405


def test_secret_files_lose_their_trailing_newline(tmp_path, monkeypatch):
    from neena.settings._env import SecretFileEnv

    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("NEENA_TEST_SECRET_FILE", str(secret))

    assert SecretFileEnv().str("NEENA_TEST_SECRET") == "s3cret"
