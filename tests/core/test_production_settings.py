"""Production settings: `check --deploy` is clean with the defaults, and example or empty secrets stop the start."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
REAL_SECRET_KEY = "q8J2vYx-3nPZr0Lw_TfK6mHcA9sUeBd4iVoG1yQ7tXjN5kRpMzWa"


def production_environment(**overrides: str) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "NEENA_", "DATABASE_URL", "REDIS_URL"))
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="neena.settings.production",
        DJANGO_SECRET_KEY=REAL_SECRET_KEY,
        NEENA_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        DJANGO_ALLOWED_HOSTS="neena.example.org",
    )
    environment.update(overrides)
    return environment


def manage(*arguments: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_reports_nothing_with_the_defaults() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", environment=production_environment())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DJANGO_SECRET_KEY", ""),
        ("DJANGO_SECRET_KEY", "change-me-this-is-not-a-secret-key-0123456789abcdef"),
        ("DJANGO_SECRET_KEY", "development-only-secret-key-change-me-in-production-0123456789"),
        ("NEENA_ENCRYPTION_KEYS", ""),
        # docker-compose.yml's former default: the Fernet encoding of "change-me-change-me-change-me-01".
        ("NEENA_ENCRYPTION_KEYS", "Y2hhbmdlLW1lLWNoYW5nZS1tZS1jaGFuZ2UtbWUtMDE="),
        ("NEENA_LLM_API_KEY", "changeme"),
    ],
)
def test_an_empty_or_example_secret_stops_the_start_naming_it(name: str, value: str) -> None:
    result = manage("check", environment=production_environment(**{name: value}))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr.splitlines()[-1]


@pytest.mark.parametrize(
    "name", ["NEENA_LIST_TASK_RUNS_LIMIT", "NEENA_LIST_TASK_RUN_FIELD_CHARS", "NEENA_DETAIL_TASK_RUNS_LIMIT"]
)
def test_a_response_bound_below_one_stops_the_start(name: str) -> None:
    result = manage("check", environment=production_environment(**{name: "0"}))

    assert result.returncode != 0
    assert f"{name} must be at least 1, not 0." in result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"NEENA_OIDC_ISSUER": "https://neena.eu.auth0.com/"},
            "NEENA_OIDC_ISSUER is set but NEENA_OIDC_AUDIENCE is empty",
        ),
        (
            {"NEENA_OIDC_ISSUER": "http://neena.eu.auth0.com/", "NEENA_OIDC_AUDIENCE": "https://api.neena.io"},
            "NEENA_OIDC_ISSUER must be an https:// URL in production",
        ),
        (
            {
                "NEENA_OIDC_ISSUER": "https://neena.eu.auth0.com/",
                "NEENA_OIDC_AUDIENCE": "https://api.neena.io",
                "NEENA_OIDC_JWKS_URL": "http://neena.eu.auth0.com/.well-known/jwks.json",
            },
            "NEENA_OIDC_JWKS_URL must be an https:// URL in production",
        ),
        (
            {"NEENA_OIDC_JWKS_REFETCH_SECONDS": "700"},
            "NEENA_OIDC_JWKS_REFETCH_SECONDS must be at most NEENA_OIDC_JWKS_CACHE_SECONDS",
        ),
    ],
)
def test_an_oidc_issuer_that_could_accept_foreign_tokens_stops_the_start(
    overrides: dict[str, str], message: str
) -> None:
    result = manage("check", environment=production_environment(**overrides))

    assert result.returncode != 0
    assert message in result.stderr


def test_an_https_oidc_issuer_with_an_audience_starts() -> None:
    overrides = {"NEENA_OIDC_ISSUER": "https://neena.eu.auth0.com/", "NEENA_OIDC_AUDIENCE": "https://api.neena.io"}

    result = manage("check", "--deploy", "--fail-level", "WARNING", environment=production_environment(**overrides))

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "origin", ["http://app.example.com", "http://192.168.1.20:5173", "http://localhost.evil.example"]
)
def test_an_http_cors_origin_stops_the_start(origin: str) -> None:
    result = manage(
        "check", environment=production_environment(NEENA_CORS_ALLOWED_ORIGINS=f"https://app.example.com,{origin}")
    )

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"NEENA_CORS_ALLOWED_ORIGINS: {origin!r} is not an https:// origin" in result.stderr


def test_https_and_loopback_http_cors_origins_start() -> None:
    origins = "https://app.example.com,http://localhost:5173,http://127.0.0.1:3000,http://localhost,http://[::1]:8080"

    result = manage("check", environment=production_environment(NEENA_CORS_ALLOWED_ORIGINS=origins))

    assert result.returncode == 0, result.stdout + result.stderr
