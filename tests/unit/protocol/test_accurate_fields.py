"""`accurate_fields` reads what the accurate list compares, exactly as `decode_attributes` would."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import codec
from protocol.attributes import (
    ATTRIBUTES_VERSION,
    FileAttributes,
    FileType,
    _raw_type,
    accurate_fields,
    decode_attributes,
    encode_attributes,
    hard_link_of,
)
from protocol.errors import DecodeError

I64 = st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1)


@given(
    kind=st.sampled_from(list(FileType)),
    mode=I64,
    size=I64,
    mtime=I64,
    ctime=I64,
    path=st.binary(max_size=64),
)
def test_the_same_fields_as_a_full_decode(
    *, kind: FileType, mode: int, size: int, mtime: int, ctime: int, path: bytes
) -> None:
    payload = encode_attributes(
        FileAttributes(path, kind, mode, 0, 0, size, 0, mtime, ctime, digest_algorithm="XXH128")
    )
    full = decode_attributes(payload)
    assert accurate_fields(payload) == (
        full.type,
        full.mtime_ns,
        full.ctime_ns,
        full.size,
        full.mode,
    )


def _record(**changes: object) -> bytes:
    fields: list[object] = [ATTRIBUTES_VERSION, b"/a", int(FileType.REGULAR), 0o100644, 0, 0, 1]
    fields += [0, 2, 3, 1, 0, 0, 0, b"", 0, "", False, ""]
    names = {"kind": 2, "mode": 3, "size": 6, "mtime": 8, "ctime": 9, "version": 0}
    for name, value in changes.items():
        fields[names[name]] = value
    return codec.pack(tuple(fields))


@pytest.mark.parametrize(
    "payload",
    [
        _record(kind=99),
        _record(kind=True),
        _record(size=True),
        _record(mtime=2**63),
        _record(ctime="3"),
        _record(version=2),
        codec.pack((1, b"/a")),
        b"\xc1",
    ],
)
def test_malformed_records_are_refused(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        accurate_fields(payload)


@given(kind=st.sampled_from(list(FileType)), link_index=I64)
def test_hard_link_of_names_the_carrier_of_a_hard_link_only(
    *, kind: FileType, link_index: int
) -> None:
    payload = encode_attributes(
        FileAttributes(b"/a", kind, 0o100644, 0, 0, 1, 0, 2, 3, link_index=link_index)
    )
    full = decode_attributes(payload)
    expected = full.link_index if full.type == FileType.HARDLINK and full.link_index > 0 else 0
    assert hard_link_of(payload) == expected


@pytest.mark.parametrize(
    "payload", [_record(kind=99), _record(kind=True), _record(version=2), codec.pack((1, 2))]
)
def test_hard_link_of_refuses_what_a_full_decode_refuses(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_attributes(payload)
    with pytest.raises(DecodeError):
        hard_link_of(payload)


@pytest.mark.parametrize("path_length", [0, 1, 254, 255, 65534, 65535])  # with its "/"
@pytest.mark.parametrize("kind", list(FileType))
def test_hard_link_of_reads_the_type_byte_after_paths_of_every_length(
    path_length: int, kind: FileType
) -> None:
    """The type byte is found after a path encoded as bin 8, 16 or 32 (#14: no unpacking)."""
    path = b"/" + b"p" * path_length
    payload = encode_attributes(
        FileAttributes(path, kind, 0o100644, 0, 0, 1, 0, 2, 3, link_index=7)
    )
    assert _raw_type(payload) == kind
    assert hard_link_of(payload) == (7 if kind == FileType.HARDLINK else 0)


@pytest.mark.parametrize(
    "payload",
    [
        bytes.fromhex("dc001301c500"),  # a bin16 length cut short
        bytes.fromhex("dc001301c6000000"),  # a bin32 length cut short
        bytes.fromhex("dc001301c40001"),  # an empty path, a type, then nothing
        bytes.fromhex("dc001301c4ff00000000"),  # a path of 255 bytes in a record of 10
    ],
)
def test_hard_link_of_refuses_a_record_cut_short(payload: bytes) -> None:
    assert _raw_type(payload) == -1
    with pytest.raises(DecodeError):
        hard_link_of(payload)
