"""The one place that owns msgpack options: bytes stay bytes, arrays become tuples, sizes are capped."""

from __future__ import annotations

from typing import Any

import msgpack

from protocol.errors import DecodeError


def pack(obj: object) -> bytes:
    """Serialise to msgpack; str is UTF-8 text, bytes travel as msgpack bin (paths stay bytes)."""
    data: bytes = msgpack.packb(obj, use_bin_type=True, strict_types=False, datetime=False)
    return data


def unpack(data: bytes | bytearray | memoryview) -> Any:
    """Deserialise one msgpack value; malformed or trailing bytes raise DecodeError.

    The body was already bounded by the frame limit, and msgpack bounds every container by
    the input's length, so a hostile length prefix inside the body cannot allocate more.
    """
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=False,
            strict_map_key=True,
        )
    except (
        ValueError,
        TypeError,
        msgpack.ExtraData,
        msgpack.FormatError,
        msgpack.StackError,
    ) as exc:
        raise DecodeError(f"malformed msgpack body: {exc}") from exc
