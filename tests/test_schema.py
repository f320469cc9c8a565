"""The OpenAPI schema: valid OpenAPI 3, covering the documented paths, and true of the live server.

The schemathesis test runs a real HTTP server (pytest-django's ``live_server``) and sends generated requests, valid
and invalid, to every operation; the server must never answer 5xx nor anything the schema does not describe.
"""

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.config import SchemathesisConfig

from apps.accounts.services import api_key_create
from tests.factories import UserFactory

OPENAPI = SchemaGenerator().get_schema(request=None, public=True)

DOCUMENTED = {
    "/api/v1/users/": {"get"},
    "/api/v1/users/create_if_not_exists": {"post"},
    "/api/v1/flow_requests/": {"get", "post", "put", "delete"},
    "/api/v1/flow_requests/all": {"get"},
    "/api/v1/task_definitions/": {"get"},
    "/api/v1/task_definitions/all": {"get"},
    "/api/v1/integrations/all": {"get"},
    "/api/v1/flows/": {"get", "post", "put", "delete"},
    "/api/v1/flows/all": {"get"},
    "/api/v1/flows/execute": {"post"},
    "/api/v1/flows/generate": {"get", "post"},
    "/api/v1/flows/export": {"get"},
    "/api/v1/flows/import": {"post"},
    "/api/v1/flow_runs/": {"get", "post"},
    "/api/v1/flow_runs/approve": {"put"},
    "/api/v1/flow_runs/reject": {"put"},
    "/api/v1/flow_runs/cancel": {"post"},
    "/api/v1/flow_runs/retry": {"post"},
    "/api/v1/flow_runs/rerun": {"post"},
    "/api/v1/flow_runs/rerun_from": {"post"},
    "/api/v1/flow_runs/retry_failed": {"post"},
    "/api/v1/flow_runs/all": {"get"},
    "/api/v1/flow_runs/all_for_flow_id": {"get"},
    "/api/v1/flow_runs/with_flow_result": {"get"},
    "/api/v1/flow_runs/preview": {"get"},
    "/api/v1/integration_credentials/": {"post", "delete"},
    "/api/v1/integration_credentials/all": {"get"},
    "/api/v1/integration_credentials/oauth2/authorize_url": {"get"},
    "/api/v1/integration_credentials/oauth2/code": {"post"},
    "/api/v1/webhook_trigger_definitions/": {"get"},
    "/api/v1/webhook_trigger_definitions/all": {"get"},
    "/api/v1/webhook_trigger_operations/": {"get", "post", "delete"},
    "/api/v1/webhook_trigger_operations/all": {"get"},
    "/api/v1/flow_results/": {"get"},
    "/api/v1/webhooks/{operation_id}/": {"post"},
}
# Authenticated by a signature instead of a token: no security requirement, so no 403 (no scope to lack).
TOKENLESS = {("post", "/api/v1/webhooks/{operation_id}/")}


def test_schema_is_valid_openapi():
    validate(OPENAPI)


def test_the_schema_describes_the_api_only():
    assert all(path.startswith("/api/v1/") for path in OPENAPI["paths"])  # not the schema or docs pages


def test_schema_describes_every_documented_operation():
    described = {path: set(operations) - {"parameters"} for path, operations in OPENAPI["paths"].items()}

    for path, methods in DOCUMENTED.items():
        assert methods <= described.get(path, set()), path


def test_every_operation_documents_its_errors():
    for path, operations in OPENAPI["paths"].items():
        for method, operation in operations.items():
            expected = {"401", "422"} if (method, path) in TOKENLESS else {"401", "403", "422"}
            assert expected <= set(operation["responses"]), f"{method} {path}"
            assert ("security" not in operation) == ((method, path) in TOKENLESS), f"{method} {path}"


def test_the_inbound_webhook_is_described_with_its_signature_headers_and_answers():
    operation = OPENAPI["paths"]["/api/v1/webhooks/{operation_id}/"]["post"]
    headers = {parameter["name"] for parameter in operation["parameters"] if parameter["in"] == "header"}

    assert "/api/v1/webhooks/{operation_id}" not in OPENAPI["paths"]  # one spelling, as documented
    assert {"webhook-id", "webhook-timestamp", "webhook-signature", "X-Hub-Signature-256", "X-Slack-Signature"} <= (
        headers
    )
    assert {"200", "202", "401", "404", "413", "422", "503"} <= set(operation["responses"])
    assert operation["requestBody"]["content"]["application/json"]["schema"]["type"] == "object"


IDEMPOTENT = {
    ("post", "/api/v1/flow_requests/"),
    ("put", "/api/v1/flow_requests/"),
    ("post", "/api/v1/flows/"),
    ("put", "/api/v1/flows/"),
    ("post", "/api/v1/flows/execute"),
    ("post", "/api/v1/flows/generate"),
    ("post", "/api/v1/flows/import"),
    ("post", "/api/v1/flow_runs/"),
    ("put", "/api/v1/flow_runs/approve"),
    ("put", "/api/v1/flow_runs/reject"),
    ("post", "/api/v1/flow_runs/cancel"),
    ("post", "/api/v1/flow_runs/retry"),
    ("post", "/api/v1/flow_runs/rerun"),
    ("post", "/api/v1/flow_runs/rerun_from"),
    ("post", "/api/v1/flow_runs/retry_failed"),
    ("post", "/api/v1/organizations/"),
    ("put", "/api/v1/organizations/"),
    ("post", "/api/v1/organizations/members"),
    ("put", "/api/v1/organizations/members"),
}


def test_the_idempotency_key_header_is_documented_where_it_is_honoured():
    documented = {
        (method, path)
        for path, operations in OPENAPI["paths"].items()
        for method, operation in operations.items()
        if any(
            parameter["in"] == "header" and parameter["name"] == "Idempotency-Key"
            for parameter in operation.get("parameters", [])
        )
    }

    assert documented == IDEMPOTENT
    for method, path in IDEMPOTENT:
        assert "409" in OPENAPI["paths"][path][method]["responses"], (method, path)


def test_schema_endpoint_and_docs_are_served(client):
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200
    assert client.get("/api/redoc/").status_code == 200


# Schema-violating data must be refused with one of schemathesis' expected statuses, or with 413: a body past a
# list's maxItems can also be past NEENA_MAX_BODY_BYTES, and is then refused before it is read.
CHECKS_CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"],
            }
        }
    }
)
schema = schemathesis.openapi.from_dict(OPENAPI, config=CHECKS_CONFIG)


@pytest.fixture
def token(transactional_db: None) -> str:
    return api_key_create(user=UserFactory(email="fuzz@example.com"), scopes=["read", "write", "approve"])


@pytest.mark.live_server
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_live_server_honours_the_schema(case, live_server, token):
    case.call_and_validate(
        base_url=live_server.url,
        headers={"Authorization": f"Bearer {token}"},
        # "Schema-valid data must be accepted" cannot hold for ids: a well-formed UUID of a row that does not exist
        # is rightly a 404 or 422. Every other check (no 5xx, documented status codes, content types, response
        # bodies and headers matching the schema, invalid data rejected, missing auth rejected) runs.
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )
