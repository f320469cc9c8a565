"""The rate limit is counted in Redis, so every web process and host shares it, and a dead cache refuses no one."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import caches
from django.test import override_settings
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.core.throttling import UserRateThrottle

ROOT = Path(__file__).resolve().parents[2]

# Asked in another Python process: would the same user's next request be allowed there?
OTHER_PROCESS_CHECK = """
import sys, types
import django
django.setup()
from apps.core.throttling import UserRateThrottle
UserRateThrottle.THROTTLE_RATES = {"user": "3/minute"}
user = types.SimpleNamespace(is_authenticated=True, pk=sys.argv[1])
request = types.SimpleNamespace(user=user, META={"REMOTE_ADDR": "127.0.0.1"})
print("allowed" if UserRateThrottle().allow_request(request, None) else "throttled")
"""


def redis_cache(location: str) -> dict[str, Any]:
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": location,
            "KEY_PREFIX": "neena-cache",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }


@pytest.fixture
def three_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    # DRF reads the rates into the class when it is imported; the test's rate replaces them there.
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/minute"})


def test_the_rate_is_shared_with_other_processes(
    api: APIClient, owner: User, redis_url: str, three_a_minute: None
) -> None:
    with override_settings(CACHES=redis_cache(redis_url)):
        caches["default"].clear()
        statuses = [api.get("/api/v1/users/").status_code for _ in range(3)]
        assert statuses == [200, 200, 200]

        environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "neena.settings.test", "NEENA_CACHE_URL": redis_url}
        other = subprocess.run(
            [sys.executable, "-c", OTHER_PROCESS_CHECK, str(owner.pk)],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert other.returncode == 0, other.stderr
        assert other.stdout.strip().splitlines()[-1] == "throttled"

        refused = api.get("/api/v1/users/")
        assert refused.status_code == 429
        assert int(refused["Retry-After"]) > 0
        assert refused.json()["code"] == "throttled"
        caches["default"].clear()


def test_an_unreachable_cache_lets_requests_through(
    api: APIClient, three_a_minute: None, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on port 1: every cache call fails at once.
    with override_settings(CACHES=redis_cache("redis://127.0.0.1:1/0")):
        statuses = [api.get("/api/v1/users/").status_code for _ in range(5)]
    assert statuses == [200] * 5
    assert "the cache is unavailable" in caplog.text
