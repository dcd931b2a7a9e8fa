"""struct_to_dict reads a Struct as json_format.MessageToDict does, on any JSON-like value."""

from __future__ import annotations

import math
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
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
