"""Decoding skips the depth walk for fully typed messages; every bad body is still a DecodeError."""

from __future__ import annotations

import msgpack
import pytest

from protocol.errors import DecodeError
from protocol.jobs import AttributeBatch
from protocol.messages import (
    MESSAGE_TYPES,
    ConsoleReply,
    closed_schema,
    decode_message,
    encode_message,
)


def test_only_messages_with_open_fields_are_walked() -> None:
    open_types = {tag for tag, cls in MESSAGE_TYPES.items() if not closed_schema(cls)}
    assert open_types == {ConsoleReply.TYPE}


def test_an_attribute_batch_round_trips() -> None:
    records = tuple((i, 2 + i % 3, bytes([i % 256]) * 40) for i in range(1, 3000))
    msg = AttributeBatch(job="j", records=records)
    assert decode_message(encode_message(msg)) == msg


@pytest.mark.parametrize(
    "records",
    [
        [[1, 2, b"x"], [[[[[[[[[[1]]]]]]]]]]],  # nested where a record belongs
        [[1, 2, "text, not bytes"]],
        [[1, 2]],
        [[True, 2, b"x"]],  # strict: a bool is not an int
        [[1, 2, b"x", 4]],
    ],
)
def test_a_bad_record_is_a_decode_error(records: list[object]) -> None:
    body = msgpack.packb({"t": AttributeBatch.TYPE, "job": "j", "records": records})
    with pytest.raises(DecodeError, match="invalid 'attrs' message"):
        decode_message(body)


def test_deep_nesting_inside_a_typed_field_names_the_depth() -> None:
    deep: object = 1
    for _ in range(200):
        deep = [deep]
    body = msgpack.packb({"t": AttributeBatch.TYPE, "job": "j", "records": [deep]})
    with pytest.raises(DecodeError, match="deeper"):
        decode_message(body)


def test_a_console_reply_is_still_walked_for_depth() -> None:
    deep: object = 1
    for _ in range(100):
        deep = [deep]
    body = msgpack.packb({"t": ConsoleReply.TYPE, "ok": True, "data": {"x": deep}})
    with pytest.raises(DecodeError, match="deeper"):
        decode_message(body)
