"""ORJSONRenderer writes the bytes DRF's JSONRenderer writes, and hands over to it whatever orjson would write
differently."""

import dataclasses
import datetime
import decimal
import json
import uuid
from zoneinfo import ZoneInfo

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from apps.core.renderers import ORJSONRenderer


@dataclasses.dataclass
class Point:
    x: int


EVERY_CHARACTER = "".join(chr(code) for code in range(0x3000)) + "\U0001f600\U0010ffff"
SAME_BYTES = {
    "text": ["", "plain", EVERY_CHARACTER, "\u2028\u2029", 'quote " backslash \\ slash /'],
    "numbers": [0, -1, 2**63 - 1, -(2**63), 0.5, -2.75, 1234.5678, True, False, None],
    "containers": {"empty": {}, "list": [], "tuple": (1, "two"), "nested": [[{"a": [{}]}]]},
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "aware": datetime.datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=datetime.UTC),
    "whole_second": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=ZoneInfo("Asia/Kolkata")),
    "naive": datetime.datetime(2026, 1, 2, 3, 4, 5),
    "date": datetime.date(2026, 1, 2),
    "time": datetime.time(3, 4, 5, 6),
    "lazy": gettext_lazy("Not found."),
    "bytes": b"raw",
    "set": {1},
    "decimal": decimal.Decimal("2.5"),
    "serializer_output": ReturnList([ReturnDict({"id": "x"}, serializer=None)], serializer=None),
}


@pytest.mark.parametrize("key", list(SAME_BYTES))
def test_writes_the_bytes_drf_writes(key):
    data = {key: SAME_BYTES[key]}

    assert ORJSONRenderer().render(data) == JSONRenderer().render(data)


def test_a_float_with_an_exponent_is_the_same_number():
    data = [1e-05, 1e16, 6.02e23, -2.5e-300]

    written = ORJSONRenderer().render(data)

    assert written != JSONRenderer().render(data)
    assert json.loads(written) == data


@pytest.mark.parametrize(
    "data",
    [
        {"big": 2**64},
        {1: "integer key"},
        {"deep": json.loads("[" * 300 + "]" * 300)},
    ],
    ids=["beyond-64-bits", "non-string-key", "deeper-than-orjson"],
)
def test_what_orjson_cannot_write_is_written_by_drf(data):
    assert ORJSONRenderer().render(data) == JSONRenderer().render(data)


def test_an_indent_asked_for_is_honoured_by_drf():
    data = {"a": [1, 2]}

    assert ORJSONRenderer().render(data, "application/json; indent=4") == JSONRenderer().render(
        data, "application/json; indent=4"
    )


def test_nothing_is_an_empty_body():
    assert ORJSONRenderer().render(None) == b""


@pytest.mark.parametrize("data", [{"point": Point(1)}, {"aware_time": datetime.time(1, tzinfo=datetime.UTC)}])
def test_what_drf_refuses_is_refused(data):
    with pytest.raises((TypeError, ValueError)):
        JSONRenderer().render(data)
    with pytest.raises((TypeError, ValueError)):
        ORJSONRenderer().render(data)


def test_a_nan_drf_refuses_is_written_as_null():
    with pytest.raises(ValueError):
        JSONRenderer().render([float("nan")])

    assert ORJSONRenderer().render([float("nan"), float("inf")]) == b"[null,null]"
