"""Readiness checks: is the database answering, is the broker answering."""

import redis
from django.conf import settings
from django.db import connection


def database_is_up() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:  # noqa: BLE001 - any failure to answer means "not ready", whatever the driver raised
        return False


def broker_is_up() -> bool:
    timeout = settings.NEENA_BROKER_PING_TIMEOUT
    try:
        client = redis.Redis.from_url(
            settings.CELERY_BROKER_URL, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False
