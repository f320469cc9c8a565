"""Coercion of values to declared data types."""

import pytest

from apps.integrations.datatypes import coerce


@pytest.mark.parametrize(
    ("value", "data_type", "expected"),
    [
        ("42", "int", 42),
        (3.0, "int", 3),
        ("yes", "bool", True),
        (0, "bool", False),
        ("2.5", "float", 2.5),
        (7, "string", "7"),
        ({"a": 1}, "text", '{"a": 1}'),
        ("a, b", "list", ["a", "b"]),
        ('["a"]', "list", ["a"]),
        ('{"k": 1}', "dict", {"k": 1}),
        (" ann@example.com ", "email", "ann@example.com"),
        ("https://example.com/x", "url", "https://example.com/x"),
        ("2024-09-18T10:00:00Z", "datetime", "2024-09-18T10:00:00Z"),
        ('{"x": [1]}', "json", {"x": [1]}),
    ],
)
def test_coerces(value, data_type, expected):
    assert coerce(value, data_type) == expected


@pytest.mark.parametrize(
    ("value", "data_type"),
    [
        ("4.5", "int"),
        (True, "int"),
        ("maybe", "bool"),
        ("nan", "float"),
        ("nobody", "email"),
        ("ftp://x", "url"),
        (5, "list"),
        ([1], "dict"),
        ("yesterday", "datetime"),
    ],
)
def test_refuses(value, data_type):
    with pytest.raises(ValueError, match="expected"):
        coerce(value, data_type)
