"""Validators shared by every app's serializers."""

from typing import Any

from rest_framework import serializers


def reject_nul_characters(value: Any) -> None:
    """Refuses NUL characters anywhere in a JSON value: PostgreSQL cannot store them, so they would fail late."""
    if isinstance(value, str):
        if "\x00" in value:
            raise serializers.ValidationError("NUL characters are not allowed.", code="null_characters_not_allowed")
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_nul_characters(key)
            reject_nul_characters(item)
    elif isinstance(value, list):
        for item in value:
            reject_nul_characters(item)
