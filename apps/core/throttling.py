"""The API's rate limit: DRF's per-user throttle, counted in Django's cache (Redis outside tests, see CACHES).

The counters are shared by every web process and host, so NEENA_THROTTLE_RATE is the rate a user gets from the
whole deployment. When the cache does not answer, the request is let through and a warning logged: a Redis outage
already stops new work from being queued, and refusing reads as well would turn a degraded service into a down one.
"""

import logging
from typing import Any

from redis.exceptions import RedisError
from rest_framework import throttling

logger = logging.getLogger(__name__)


class UserRateThrottle(throttling.UserRateThrottle):
    """Per-user (or per-address, for anonymous callers) request rate, failing open when the cache is unreachable."""

    def allow_request(self, request: Any, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except (RedisError, OSError) as error:
            logger.warning("Rate limit not checked, the cache is unavailable: %s", error)
            return True
