"""The on-disk volume format of File devices: a label, then checksummed blocks of records.

See docs/volume-format.md. This module is pure file I/O (no asyncio): the Storage Daemon runs it
in worker threads, and offline tools and tests call it directly.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, Final

from zlib_ng import zlib_ng

from common import gather
from protocol import codec
from protocol.errors import DecodeError
from protocol.records import Record

FORMAT_VERSION: Final = 1
BLOCK_MAGIC: Final = b"SRB1"
BLOCK_HEADER: Final = struct.Struct(">4sIII")  # magic, block number, data length, crc32
RECORD_HEADER: Final = struct.Struct(">IIiiI")  # session id, session time, file index, stream, length
BLOCK_SIZE: Final = 1024 * 1024  # a block is flushed before it would grow past this
MAX_BLOCK_DATA: Final = 64 * 1024 * 1024  # a header announcing more is corrupt, not a reason to allocate

# zlib's CRC-32 (the same values), about ten times faster: 2 GiB in 0.03 s against 0.29 s here, and
# a copy checks every block it reads and sums every block it writes.
_crc32 = zlib_ng.crc32

# Label records use negative file indexes, as Bareos does.
VOL_LABEL: Final = -2
SOS_LABEL: Final = -4
EOS_LABEL: Final = -5


class VolumeError(Exception):
    """A volume cannot be used; the message names the file and what is wrong."""


class VolumeCorrupt(VolumeError):
    """A block failed its checks: bad magic, impossible length, checksum mismatch, truncation."""

    def __init__(self, path: Path, block: int, offset: int, problem: str) -> None:
        super().__init__(f"volume {path.name}: block {block} at byte offset {offset}: {problem}")
        self.path = path
        self.block = block
        self.offset = offset


class VolumeFull(VolumeError):
    """The volume reached Maximum Volume Bytes; the record was not written."""


@dataclass(frozen=True)
class VolumeLabel:
    volume_name: str
    pool_name: str
    pool_type: str
    media_type: str
    label_time: float
    label_program: str
    format_version: int = FORMAT_VERSION


@dataclass(frozen=True)
class SessionLabel:
    """Written at the start and at the end of each job's session on a volume."""

    job_id: int
    job: str
    job_name: str
    client: str
    fileset: str
    job_type: str
    level: str
    pool: str
    session_id: int
    session_time: int
    start_time: float
    end_time: float | None = None
    files: int = 0
    bytes: int = 0
    status: str | None = None
    first_index: int = 0
    last_index: int = 0


@dataclass(frozen=True)
class Position:
    """Where a block starts: its number and its byte offset in the volume file."""

    block_number: int
    offset: int


@dataclass(frozen=True, slots=True)
class VolumeRecord:
    session_id: int
    session_time: int
    file_index: int
    stream: int
    payload: bytes | memoryview
    position: Position

    def record(self) -> Record:
        return Record(self.file_index, self.stream, self.payload)


@dataclass(frozen=True)
class BootstrapVolume:
    """What to read from one volume: one job session, some file-index ranges (inclusive)."""

    volume_name: str
    session_id: int
    session_time: int
    file_indexes: tuple[tuple[int, int], ...]
    start: Position | None = None


def _pack_label(label: Any) -> bytes:
    return codec.pack(asdict(label))


def _unpack_label(cls: type[Any], payload: bytes | memoryview, path: Path) -> Any:
    try:
        data = codec.unpack(payload)
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
    except (DecodeError, TypeError, AttributeError) as exc:
        raise VolumeError(f"volume {path.name}: unreadable {cls.__name__}: {exc}") from exc


def _encode_record(session_id: int, session_time: int, file_index: int, stream: int, payload: bytes) -> bytes:
    return RECORD_HEADER.pack(session_id, session_time, file_index, stream, len(payload)) + payload


def _block_bytes(number: int, data: bytes) -> bytes:
    crc = _crc32(data, _crc32(struct.pack(">II", number, len(data))))
    return BLOCK_HEADER.pack(BLOCK_MAGIC, number, len(data), crc) + data


def label_volume(path: Path, label: VolumeLabel) -> None:
    """Create a new volume file holding only its label (refuses to overwrite anything)."""
    data = _encode_record(0, 0, VOL_LABEL, 0, _pack_label(label))
    try:
        with path.open("xb") as f:
            f.write(_block_bytes(0, data))
            f.flush()
            os.fsync(f.fileno())
    except FileExistsError as exc:
        raise VolumeError(f"volume file {path} already exists; refusing to relabel it") from exc
    except OSError as exc:
        raise VolumeError(f"cannot create volume {path}: {exc.strerror}") from exc


def read_label(path: Path) -> VolumeLabel:
    try:
        with path.open("rb") as f:
            for record in _records(f, path, 0):
                if record.file_index != VOL_LABEL:
                    break
                label: VolumeLabel = _unpack_label(VolumeLabel, record.payload, path)
                return label
    except OSError as exc:
        raise VolumeError(f"cannot read volume {path}: {exc.strerror}") from exc
    raise VolumeError(f"{path} is not a Strongroom volume (no volume label)")


def _read_block(f: BinaryIO, path: Path, expect: int | None) -> tuple[int, bytes, int] | None:
    """The next block: (number, data, its offset); None at a clean end of file."""
    offset = f.tell()
    header = f.read(BLOCK_HEADER.size)
    if not header:
        return None
    if len(header) < BLOCK_HEADER.size:
        raise VolumeCorrupt(path, expect or 0, offset, "truncated block header")
    magic, number, length, crc = BLOCK_HEADER.unpack(header)
    if magic != BLOCK_MAGIC:
        raise VolumeCorrupt(path, expect if expect is not None else number, offset, f"bad block magic {magic!r}")
    if length > MAX_BLOCK_DATA:
        raise VolumeCorrupt(path, number, offset, f"impossible block length {length}")
    data = f.read(length)
    if len(data) < length:
        raise VolumeCorrupt(path, number, offset, f"truncated block ({len(data)} of {length} bytes)")
    if _crc32(data, _crc32(struct.pack(">II", number, length))) != crc:
        raise VolumeCorrupt(path, number, offset, "checksum mismatch (the data on disk changed after it was written)")
    if expect is not None and number != expect:
        raise VolumeCorrupt(path, number, offset, f"block number {number}, expected {expect}")
    return number, data, offset


def _split(data: bytes, path: Path, number: int, offset: int) -> Iterator[tuple[int, int, int, int, bytes | memoryview]]:
    """The records of a block. A large payload is a view of the block (no copy); one smaller than an
    eighth of it is copied, so that a few selected small records (a restore of some files) do not
    keep whole blocks alive: a view holds at most eight times its own size."""
    pos = 0
    view = memoryview(data)
    while pos < len(data):
        if len(data) - pos < RECORD_HEADER.size:
            raise VolumeCorrupt(path, number, offset, "record header crosses the block end")
        session_id, session_time, file_index, stream, length = RECORD_HEADER.unpack_from(data, pos)
        pos += RECORD_HEADER.size
        if pos + length > len(data):
            raise VolumeCorrupt(path, number, offset, "record crosses the block end")
        payload = view[pos : pos + length]
        yield session_id, session_time, file_index, stream, payload if length * 8 >= len(data) else bytes(payload)
        pos += length


def _records(f: BinaryIO, path: Path, first_block: int) -> Iterator[VolumeRecord]:
    expect = first_block
    while (block := _read_block(f, path, expect)) is not None:
        number, data, offset = block
        where = Position(number, offset)
        for sid, stime, index, stream, payload in _split(data, path, number, offset):
            yield VolumeRecord(sid, stime, index, stream, payload, where)
        expect = number + 1


class VolumeReader:
    """Every record of a volume in order, checking each block."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = read_label(path)

    def records(self, start: Position | None = None) -> Iterator[VolumeRecord]:
        try:
            with self.path.open("rb") as f:
                if start is not None:
                    f.seek(start.offset)
                yield from _records(f, self.path, start.block_number if start else 0)
        except FileNotFoundError as exc:
            raise VolumeError(f"volume file {self.path} not found") from exc

    def sessions(self) -> Iterator[SessionLabel]:
        """Start- and end-of-session labels, for listing a volume or rebuilding a catalog."""
        for record in self.records():
            if record.file_index in (SOS_LABEL, EOS_LABEL):
                yield _unpack_label(SessionLabel, record.payload, self.path)


def _wanted(index: int, ranges: Sequence[tuple[int, int]]) -> bool:
    return any(lo <= index <= hi for lo, hi in ranges)


def select_records(reader: VolumeReader, entries: Iterable[BootstrapVolume]) -> Iterator[tuple[BootstrapVolume, Record]]:
    """The data records a bootstrap selects from one volume (labels are never selected)."""
    for entry in entries:
        if entry.volume_name != reader.label.volume_name:
            continue
        last = max((hi for _lo, hi in entry.file_indexes), default=0)
        seen_session = False
        for rec in reader.records(entry.start):
            if rec.session_id != entry.session_id or rec.session_time != entry.session_time:
                continue
            seen_session = True
            if rec.file_index == EOS_LABEL:
                break
            if rec.file_index > 0 and _wanted(rec.file_index, entry.file_indexes):
                yield entry, rec.record()
            elif rec.file_index > last and seen_session:
                break


class VolumeWriter:
    """Append sessions to a labeled volume; blocks are written whole and checksummed."""

    def __init__(self, path: Path, max_bytes: int | None = None, block_size: int = BLOCK_SIZE) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.block_size = block_size
        self.label = read_label(path)
        self._f = path.open("r+b", buffering=0)
        try:
            self._next_block, good_end = self._scan_tail()
        except BaseException:
            self._f.close()
            raise
        self._f.seek(good_end)
        self._f.truncate()
        self._pending: list[bytes | memoryview] = []
        self._pending_size = 0
        self.size = good_end
        self.blocks_written = 0

    def _scan_tail(self) -> tuple[int, int]:
        """Walk the block headers: the next block number and where good data ends.

        A torn last block (a crash mid-write) is cut off; a bad block anywhere else refuses the
        volume, because appending after damage would hide it.
        """
        f = self._f
        f.seek(0)
        number, end = 0, 0
        total = os.fstat(f.fileno()).st_size
        while end < total:
            header = f.read(BLOCK_HEADER.size)
            if len(header) < BLOCK_HEADER.size:
                break
            magic, block_number, length, _crc = BLOCK_HEADER.unpack(header)
            if magic != BLOCK_MAGIC or block_number != number or length > MAX_BLOCK_DATA:
                raise VolumeCorrupt(self.path, number, end, "damaged block; refusing to append to this volume")
            if end + BLOCK_HEADER.size + length > total:
                break
            end += BLOCK_HEADER.size + length
            number += 1
            f.seek(end)
        return number, end

    @property
    def position(self) -> Position:
        """Where the next block will start."""
        return Position(self._next_block, self.size)

    def _add(self, data: bytes) -> None:
        if self._pending and self._pending_size + len(data) > self.block_size:
            self.flush()
        self._pending.append(data)
        self._pending_size += len(data)

    def start_session(self, label: SessionLabel) -> Position:
        """Begin a job's session in a fresh block; returns that block's position."""
        self.flush()
        start = self.position
        self._add(_encode_record(label.session_id, label.session_time, SOS_LABEL, 0, _pack_label(label)))
        return start

    def write(self, session_id: int, session_time: int, record: Record) -> None:
        if self.max_bytes is not None and self.size + self._pending_size >= self.max_bytes:
            raise VolumeFull(f"volume {self.label.volume_name} reached {self.max_bytes} bytes")
        payload = record.payload
        size = RECORD_HEADER.size + len(payload)
        if self._pending and self._pending_size + size > self.block_size:
            self.flush()
        # Header and payload are kept apart until the block is joined once (no per-record copy).
        self._pending.append(RECORD_HEADER.pack(session_id, session_time, record.file_index, record.stream, len(payload)))
        self._pending.append(payload)
        self._pending_size += size

    def flush(self) -> Position:
        """Write the pending block; returns the position of the last block written."""
        if self._pending:
            number, length = self._next_block, self._pending_size
            crc = _crc32(struct.pack(">II", number, length))
            for part in self._pending:
                crc = _crc32(part, crc)
            # Gathered write: the block is never joined into one buffer (no copy under the GIL).
            # A full disk raises OSError (ENOSPC).
            gather.write_all(partial(os.writev, self._f.fileno()),
                             [BLOCK_HEADER.pack(BLOCK_MAGIC, number, length, crc), *self._pending])
            self.size += BLOCK_HEADER.size + length
            self._next_block += 1
            self.blocks_written += 1
            self._pending, self._pending_size = [], 0
        return Position(self._next_block - 1, self.size)

    def end_session(self, label: SessionLabel) -> Position:
        """Close the session with its end label, and make it durable."""
        self._add(_encode_record(label.session_id, label.session_time, EOS_LABEL, 0, _pack_label(label)))
        pos = self.flush()
        self.sync()
        return pos

    def sync(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        if self._f.closed:
            return
        with contextlib.suppress(OSError):
            self.flush()
            self.sync()
        self._f.close()
