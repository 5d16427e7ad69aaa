"""Data records, the hot path: `[file_index, stream, payload]` batched into one frame, no model validation."""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple

from protocol import codec
from protocol.errors import DecodeError, FrameTooLarge
from protocol.frames import HEADER
from protocol.messages import Message, decode_message

# A batch frame carries at most this many payload bytes before the sender flushes it.
BATCH_BYTES: Final = 512 * 1024


def frame_batch_bytes(max_frame_size: int, most: int) -> int:
    """How much record data a sender puts in one batch for a peer whose frames may be
    `max_frame_size` long, at most `most`: a bulk connection (common.bulk) takes frames of several
    MiB, a plain one BATCH_BYTES (half its frame limit leaves room for the record that fills the
    batch and for the framing)."""
    return min(most, max(BATCH_BYTES, max_frame_size // 2))


class Stream(enum.IntEnum):
    """What a record's payload is; numbers are stored on volumes and must never change."""

    ATTRIBUTES = 1  # protocol.attributes.FileAttributes
    DATA = 2  # 8-byte big-endian offset + raw bytes (holes of sparse files are simply absent)
    DIGEST = 3  # msgpack [algorithm, digest bytes] of the whole file's data
    COMPRESSED_DATA = (
        4  # 8-byte offset + one independently compressed chunk (codec in the attributes)
    )
    XATTRS = 7  # msgpack [[name bytes, value bytes], ...]
    ACL_ACCESS = 8  # raw system.posix_acl_access value
    ACL_DEFAULT = 9  # raw system.posix_acl_default value
    DELETED = (
        10  # accurate mode: attributes of a file that is gone; catalog only, never on a volume
    )
    JOB_START = 11  # restore stream only: 8-byte JobId; the records that follow belong to that job


DATA_STREAMS: Final = frozenset({Stream.DATA, Stream.COMPRESSED_DATA})
_OFFSET: Final = struct.Struct(">Q")


OFFSET_SIZE: Final = _OFFSET.size


def pack_data(offset: int, chunk: bytes) -> bytes:
    """A DATA / COMPRESSED_DATA payload: where the chunk goes in the file, then the chunk."""
    return _OFFSET.pack(offset) + chunk


def set_data_offset(payload: bytearray, offset: int) -> None:
    """Write the offset into the first OFFSET_SIZE bytes of a payload whose chunk was read in
    place after them (no copy of the chunk, as `pack_data` makes)."""
    _OFFSET.pack_into(payload, 0, offset)


def unpack_data(payload: bytes | memoryview) -> tuple[int, memoryview]:
    if len(payload) < _OFFSET.size:
        raise DecodeError("data record shorter than its offset")
    return _OFFSET.unpack_from(payload)[0], memoryview(payload)[_OFFSET.size :]


class Record(NamedTuple):
    """One record of a job's stream: which file, which kind of payload, the payload. A named
    tuple: made once per record by every daemon a record crosses (0.28 µs, a frozen dataclass
    0.47)."""

    file_index: int
    stream: int
    payload: bytes | memoryview  # a view into the received frame on the hot path (no copy)


def encode_batch(records: Iterable[Record]) -> bytes:
    """One frame body carrying several records."""
    return codec.pack([(r.file_index, r.stream, r.payload) for r in records])


_ARRAY32: Final = struct.Struct(">BI")
_RECORD_HEAD: Final = struct.Struct(
    ">BBiBiBI"
)  # fixarray(3), int32 file index, int32 stream, bin32 length
_RECORD_HEAD_SIZE: Final = _RECORD_HEAD.size
_MAX_HEADER_SIZE: Final = 2**31 - 1  # a frame header is a signed 32-bit length
_BATCH_MARKER: Final = 0xDD  # array32: the first byte of a batch `encode_batch_parts` lays out
_ATTRIBUTES: Final = int(Stream.ATTRIBUTES)


def encode_batch_parts(records: Iterable[Record]) -> list[bytes | memoryview]:
    """The same msgpack body as `encode_batch`, as pieces: payloads are not copied into one buffer."""
    parts: list[bytes | memoryview] = [b""]
    count = 0
    for r in records:
        parts.append(
            _RECORD_HEAD.pack(0x93, 0xD2, r.file_index, 0xD2, r.stream, 0xC6, len(r.payload))
        )
        parts.append(r.payload)
        count += 1
    parts[0] = _ARRAY32.pack(_BATCH_MARKER, count)
    return parts


class BatchFrame(NamedTuple):
    """A batch as a whole frame to send (`encode_batch_frame`), with what a job counts of it."""

    parts: tuple[bytes | memoryview, ...]  # the frame header and the body, in pieces
    size: int  # the body's length (the frame limit applies to it)
    files: int  # ATTRIBUTES records
    other_bytes: int  # payload bytes of the other records


def encode_batch_frame(records: Sequence[Record], join_below: int) -> BatchFrame:
    """The frame of `encode_batch_parts(records)`, header included, in one pass over the records.

    A sender writes each piece as a TLS record of its own, so pieces shorter than `join_below`
    (the heads, small payloads; `common.link.COALESCE_BELOW`) are joined in runs and only longer
    payloads stay uncopied; the header goes with the first run. The counts are the
    job's (`files`, `other_bytes`), made in the same pass: a restore sends 246,000 records for the
    Linux tree, and the five passes this replaces (encode, count files, count bytes, size, join)
    took about 0.25 s of the Storage Daemon's event loop for them, this one about 0.15 (timeit,
    batches shaped like the tree's; most of what is left is joining the small payloads)."""
    pack = _RECORD_HEAD.pack
    parts: list[bytes | memoryview] = [b""]  # [0]: the header and the first run, at the end
    first: list[bytes | memoryview] | None = None
    run: list[bytes | memoryview] = [_ARRAY32.pack(_BATCH_MARKER, len(records))]
    size = _ARRAY32.size
    files = other = 0
    for record in records:
        payload = record.payload
        length = len(payload)
        stream = record.stream
        run.append(pack(0x93, 0xD2, record.file_index, 0xD2, stream, 0xC6, length))
        size += _RECORD_HEAD_SIZE + length
        if stream == _ATTRIBUTES:
            files += 1
        else:
            other += length
        if length < join_below:
            run.append(payload)
            continue
        if first is None:
            first = run
        else:
            parts.append(b"".join(run))
        parts.append(payload)
        run = []
    if first is None:
        first, run = run, []
    if size > _MAX_HEADER_SIZE:  # beyond what a frame header can say, let alone a frame limit
        raise FrameTooLarge(size, _MAX_HEADER_SIZE)
    parts[0] = b"".join([HEADER.pack(size), *first])
    if run:
        parts.append(b"".join(run))
    return BatchFrame(tuple(parts), size, files, other)


def decode_batch(body: bytes | bytearray | memoryview) -> list[Record]:
    """Parse a batch frame body; anything not shaped like records raises DecodeError.

    Batches written by `encode_batch_parts` are parsed with struct and their payloads are views of
    the body (no copy); any other valid msgpack encoding takes the general path.
    """
    fast = _decode_batch_fast(body)
    if fast is not None:
        return fast
    obj = codec.unpack(body)
    if not isinstance(obj, tuple):
        raise DecodeError("record batch is not an array")
    out: list[Record] = []
    for item in obj:
        if (
            not isinstance(item, tuple)
            or len(item) != 3
            or not isinstance(item[0], int)
            or not isinstance(item[1], int)
            or not isinstance(item[2], bytes)
        ):
            raise DecodeError("malformed record in batch (want [int, int, bytes])")
        out.append(Record(item[0], item[1], item[2]))
    return out


def _decode_batch_fast(body: bytes | bytearray | memoryview) -> list[Record] | None:
    if len(body) < _ARRAY32.size or body[0] != _BATCH_MARKER:
        return None
    (_marker, count) = _ARRAY32.unpack_from(body)
    view = memoryview(body)
    pos = _ARRAY32.size
    out: list[Record] = []
    head = _RECORD_HEAD
    for _ in range(count):
        if pos + head.size > len(body):
            return None
        fixarray, int1, file_index, int2, stream, bin32, length = head.unpack_from(body, pos)
        if (fixarray, int1, int2, bin32) != (0x93, 0xD2, 0xD2, 0xC6):
            return None
        pos += head.size
        end = pos + length
        if end > len(body):
            raise DecodeError("record payload crosses the end of the batch")
        out.append(Record(file_index, stream, view[pos:end]))
        pos = end
    if pos != len(body):
        raise DecodeError("trailing bytes after the last record of a batch")
    return out


def decode_body(body: bytes | bytearray | memoryview) -> list[Record] | Message:
    """A data-session frame: a record batch (msgpack array) or a control message (msgpack map)."""
    if body[:1] and (body[0] & 0xF0 == 0x90 or body[0] in (0xDC, 0xDD)):
        return decode_batch(body)
    return decode_message(body)
