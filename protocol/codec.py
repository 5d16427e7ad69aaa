"""The one place that owns msgpack options: bytes stay bytes, arrays become tuples, sizes are capped."""

from __future__ import annotations

from typing import Any, Final

import msgpack

from protocol.errors import DecodeError

# Containers nested deeper than this are refused (no message needs more than a few levels); the
# check is a loop, never recursion, so a hostile body cannot exhaust the stack.
MAX_DEPTH: Final = 32
_PLAIN: Final = (str, bytes, int, float, bool, type(None))


def _no_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code} is not part of the protocol")


def check_plain(obj: Any, max_depth: int = MAX_DEPTH) -> None:
    """Raise DecodeError unless `obj` is built of plain values and nests at most `max_depth` deep."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, _PLAIN):
            continue
        if depth > max_depth:
            raise DecodeError(f"msgpack body nests deeper than {max_depth} levels")
        if isinstance(value, tuple):
            stack.extend((item, depth + 1) for item in value if not isinstance(item, _PLAIN))
        elif isinstance(value, dict):
            stack.extend(
                (item, depth + 1) for item in value.values() if not isinstance(item, _PLAIN)
            )
        else:
            raise DecodeError(f"msgpack body holds a {type(value).__name__}, not a protocol value")


def pack(obj: object) -> bytes:
    """Serialise to msgpack; str is UTF-8 text, bytes travel as msgpack bin (paths stay bytes)."""
    data: bytes = msgpack.packb(obj, use_bin_type=True, strict_types=False, datetime=False)
    return data


def unpack(data: bytes | bytearray | memoryview, max_depth: int | None = None) -> Any:
    """Deserialise one msgpack value; malformed or trailing bytes raise DecodeError.

    The body was already bounded by the frame limit, and msgpack bounds every container by
    the input's length, so a hostile length prefix inside the body cannot allocate more.
    Extension types (timestamps included) are refused. With `max_depth`, so is anything nested
    deeper (`check_plain`); callers that check every field's type themselves can skip it.
    """
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            use_list=False,
            strict_map_key=True,
            ext_hook=_no_ext,
            timestamp=0,
        )
    except (
        ValueError,
        TypeError,
        msgpack.ExtraData,
        msgpack.FormatError,
        msgpack.StackError,
    ) as exc:
        raise DecodeError(f"malformed msgpack body: {exc}") from exc
    if max_depth is not None:
        check_plain(obj, max_depth)
    return obj
