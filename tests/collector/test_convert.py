"""struct_to_dict reads a Struct as json_format.MessageToDict does, on any JSON-like value."""

from __future__ import annotations

import math
from datetime import UTC
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from collector import convert
from collector.convert import InvalidMessageError

scalars = st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_struct_to_dict_matches_message_to_dict(value: dict[str, Any]) -> None:
    message = Struct()
    message.update(value)
    assert convert.struct_to_dict(message) == json_format.MessageToDict(message)


@pytest.mark.parametrize("number", [math.inf, -math.inf, math.nan])
def test_a_number_that_is_not_finite_is_refused_however_deep(number: float) -> None:
    message = Struct()
    message.update({"disks": [{"free": number}]})
    with pytest.raises(InvalidMessageError, match="not finite"):
        convert.struct_to_dict(message)


@given(
    seconds=st.integers(min_value=-62_135_596_800, max_value=253_402_300_799),
    nanos=st.integers(min_value=0, max_value=999_999_999),
)
def test_from_timestamp_matches_protobuf(seconds: int, nanos: int) -> None:
    ts = Timestamp(seconds=seconds, nanos=nanos)
    assert convert.from_timestamp(ts) == ts.ToDatetime(tzinfo=UTC)


@pytest.mark.parametrize(
    "ts",
    [
        Timestamp(seconds=253_402_300_800),  # year 10000
        Timestamp(seconds=-62_135_596_801),  # year 0
        Timestamp(seconds=2**62),
        Timestamp(nanos=-1),
        Timestamp(nanos=1_000_000_000),
    ],
)
def test_a_timestamp_datetime_cannot_hold_is_a_value_error(ts: Timestamp) -> None:
    with pytest.raises(ValueError, match="out of range"):
        convert.from_timestamp(ts)
