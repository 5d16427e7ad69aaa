"""Appending to a volume: one writer owns the end of an open volume, sessions hand it whole blocks.

Several jobs append to one volume at once (Device `Maximum Concurrent Jobs`). Each job's session
gathers its records into blocks of its own (`SessionWriter`); the volume's one `VolumeAppender`
writes each block whole at the end of the file under a lock, numbering blocks in file order, so
blocks of different sessions interleave and each names its session (docs/volume-format.md).

A failed write never leaves damage behind: the file is cut back to the end of the last good block
(`ftruncate`) and the volume refuses further blocks, Full after ENOSPC, Error after any other
failure. The block that failed stays with its session, which writes it again on its next volume.
Blocks go to the disk with O_DIRECT where the file system allows it (storaged.direct_io): the
file then ends in up to 4 KiB of zeros until `sync` cuts them, before it confirms anything.
Pure file I/O (no asyncio): the Storage Daemon calls it from worker threads.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Final

from common import gather
from common.aligned import Pwrite
from protocol.records import Record, Stream
from storaged.direct_io import DirectAppend
from storaged.volume import (
    BLOCK_HEADER,
    BLOCK_SIZE,
    EOS_LABEL,
    MAX_BLOCK_DATA,
    RECORD_HEADER,
    SOS_LABEL,
    Position,
    SessionLabel,
    VolumeCorrupt,
    VolumeError,
    VolumeFull,
    _pack_label,
    block_crc,
    block_header,
    read_block_header,
    read_label,
)

# errno values that mean "no room" (the volume is Full), not "the device failed" (Error).
NO_ROOM: Final = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_ZERO_CHUNK: Final = 1024 * 1024
# A block of more than JOIN_PARTS_ABOVE parts averaging under JOIN_PART_BYTES is joined before
# it is written; larger payloads go to the kernel as they are (views of the received frames).
JOIN_PARTS_ABOVE: Final = 32
JOIN_PART_BYTES: Final = 16 * 1024

Writev = Callable[[int, Sequence[bytes | memoryview]], int]


class VolumeWriteFailed(VolumeError):
    """A block could not be written; the volume was cut back to its last good block.

    `status` is what the volume becomes: Full (no room) or Error (an I/O error)."""

    def __init__(self, volume: str, status: str, reason: str) -> None:
        super().__init__(
            f"volume {volume}: {reason}; the volume was cut back to its last good block and marked {status}"
        )
        self.volume = volume
        self.status = status


@dataclass(frozen=True)
class TailRepair:
    """What opening a volume for append cut off its end (a crash in the middle of a write)."""

    offset: int
    removed: int
    reason: str


def _zeroed(fd: int, start: int, end: int) -> bool:
    """Whether every byte of the file from `start` to `end` is zero (a crash after the size grew)."""
    pos = start
    while pos < end:
        chunk = os.pread(fd, min(_ZERO_CHUNK, end - pos), pos)
        if not chunk or chunk.count(0) != len(chunk):
            return False
        pos += len(chunk)
    return True


def scan_tail(fd: int, path: Path) -> tuple[int, int, TailRepair | None]:
    """Walk the block headers of a volume: the next block number, where good data ends, and what
    must be cut off after it.

    A torn last block (a short header or data, a checksum that fails, or zeros where a block
    should start and up to the end of the file) is cut off, keeping every complete block; damage
    with good blocks after it raises VolumeCorrupt, because appending after damage would hide it.
    Only headers are read, and the last block's data (to check its checksum)."""
    total = os.fstat(fd).st_size
    with path.open("rb") as f:
        number, end, last = 0, 0, None
        while end < total:
            f.seek(end)
            try:
                header = read_block_header(f, path, number)
            except VolumeCorrupt as exc:
                if _zeroed(fd, end, total):
                    return number, end, TailRepair(end, total - end, "zeroed tail")
                if end + BLOCK_HEADER.size >= total:
                    return number, end, TailRepair(end, total - end, "torn block header")
                raise VolumeCorrupt(
                    path,
                    number,
                    end,
                    f"damaged block ({exc.args[0].rsplit(': ', 1)[-1]}); "
                    "refusing to append to this volume",
                ) from exc
            assert header is not None
            if end + header.size > total:
                return number, end, TailRepair(end, total - end, f"torn block {number}")
            last = header
            end += header.size
            number += 1
        if last is not None and last.number > 0:
            data = os.pread(fd, last.length, last.offset + last.size - last.length)
            if not last.check(data):
                return (
                    last.number,
                    last.offset,
                    TailRepair(
                        last.offset,
                        end - last.offset,
                        f"block {last.number} fails its checksum (torn write)",
                    ),
                )
    return number, end, None


class VolumeAppender:
    """The one writer of an open volume: owns its end of file; thread-safe.

    Sessions write whole blocks through `write_block`; `sync` makes everything written durable."""

    def __init__(
        self,
        path: Path,
        max_bytes: int | None = None,
        writev: Writev = os.writev,
        direct_io: bool = True,
        pwrite: Pwrite = os.pwrite,
    ) -> None:
        """`direct_io`: append through O_DIRECT where the file system allows it (storaged.direct_io);
        `writev` and `pwrite` write blocks on the buffered and the direct path (tests inject faults)."""
        self.path = path
        self.max_bytes = max_bytes or None
        self.label = read_label(path)
        self.name = self.label.volume_name
        self._writev = writev
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_RDWR)
        try:
            self._next_block, good_end, self.repair = scan_tail(self._fd, path)
            if self.repair is not None:
                os.ftruncate(self._fd, good_end)
                os.fsync(self._fd)
        except BaseException:
            os.close(self._fd)
            raise
        self.size = good_end
        self._direct: DirectAppend | None = None
        if direct_io:
            try:
                self._direct = DirectAppend.open(path, good_end, pwrite)
            except BaseException:
                os.close(self._fd)
                raise
        self.blocks_written = 0
        self.status: str | None = (
            None  # Full or Error: no new records (blocks already filled may still go)
        )
        self.reason = ""
        self._refused = False  # after a failed write: no block at all

    @property
    def next_block(self) -> int:
        return self._next_block

    def has_room(self, extra: int) -> bool:
        """Whether `extra` more bytes keep the volume under Maximum Volume Bytes (a block that is
        already being filled may pass it by at most one block)."""
        return self.max_bytes is None or self.size + extra < self.max_bytes

    def mark_full(self, reason: str) -> None:
        """Maximum Volume Bytes is reached: sessions take no new record, but a block a session
        already filled may still be written (a volume passes the limit by at most one block per
        session), so that nothing has to be carried to the next volume but the next record."""
        with self._lock:
            if self.status is None:
                self.status, self.reason = "Full", reason

    def write_block(
        self, session_id: int, session_time: int, parts: Sequence[bytes | memoryview], length: int
    ) -> Position:
        """Write one block of a session at the end of the volume; returns where it starts."""
        with self._lock:
            if self._fd < 0:
                raise VolumeError(
                    f"volume {self.name} was closed by its last session"
                )  # a bug, not a bad disk
            if self._refused:
                raise VolumeWriteFailed(self.name, self.status or "Error", self.reason)
            number, offset = self._next_block, self.size
            crc = block_crc(number, length, session_id, session_time, parts)
            block = [block_header(number, length, session_id, session_time, crc), *parts]
            try:
                self._write(offset, block, BLOCK_HEADER.size + length)
            except OSError as exc:
                self._fail(exc, f"writing block {number} at byte offset {offset}")
            self.size += BLOCK_HEADER.size + length
            self._next_block += 1
            self.blocks_written += 1
            return Position(number, offset)

    def _write(self, offset: int, block: list[bytes | memoryview], size: int) -> None:
        """Write one block at `offset`, the end of the last good block (lock held)."""
        if self._direct is not None:
            try:
                self._direct.write(block, size)
                return
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                # The device wants another alignment (nothing was written): buffered from now on,
                # from a file cut back to its data (an earlier direct write may have padded it).
                self._trim()
                self._end_direct()
        os.lseek(self._fd, offset, os.SEEK_SET)
        gather.write_all(partial(self._writev, self._fd), block)

    def _trim(self) -> None:
        """Cut the zeros a direct write padded its last file-system block with (lock held)."""
        if self._direct is not None and self._direct.padded:
            os.ftruncate(self._fd, self.size)
            self._direct.padded = False

    def _end_direct(self) -> None:
        if self._direct is not None:
            self._direct.close()
            self._direct = None

    def sync(self) -> None:
        """Make every block written so far durable; a failed fsync marks the volume Error."""
        try:
            with self._lock:
                if self._fd >= 0:
                    self._trim()
            os.fsync(self._fd)
        except OSError as exc:
            with self._lock:
                self._fail(exc, "making the volume durable (fsync)")

    def _fail(self, exc: OSError, step: str) -> None:
        """Cut the file back to its last good block and refuse further blocks (lock held)."""
        status = "Full" if exc.errno in NO_ROOM else "Error"
        reason = f"{step} failed: {exc.strerror or exc}"
        self._end_direct()
        try:
            os.ftruncate(self._fd, self.size)
        except OSError as cut:
            reason += f"; cutting back to byte {self.size} also failed: {cut.strerror}"
            status = "Error"
        self.status, self.reason, self._refused = status, reason, True
        raise VolumeWriteFailed(self.name, status, reason) from exc

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                with contextlib.suppress(OSError):
                    self._trim()
                    os.fsync(self._fd)
                self._end_direct()
                os.close(self._fd)
                self._fd = -1


@dataclass
class SessionWriter:
    """One job's session on one volume: gathers its records into blocks of its own.

    The records of the block being filled stay here until that block is written, so after a failed
    write (`VolumeWriteFailed`, `VolumeFull`) `unwritten()` hands them to the next volume."""

    volume: VolumeAppender
    session_id: int
    session_time: int
    block_size: int = BLOCK_SIZE
    first: Position | None = None  # the session's first block on this volume
    last: Position | None = None  # and its last
    first_index: int = 0
    last_index: int = 0
    files: int = 0  # file attributes written to this volume
    written: int = 0  # bytes of this session's blocks on this volume, headers included
    _records: list[Record] = field(default_factory=list)
    _parts: list[bytes | memoryview] = field(default_factory=list)
    _size: int = 0

    def start(self, label: SessionLabel) -> None:
        """Open the session (its start label opens its first block)."""
        self._add(Record(SOS_LABEL, 0, _pack_label(label)))

    def write(self, record: Record) -> None:
        """Add a record; raises VolumeFull (nothing added) when the volume has no room for it: then
        `flush` the block being filled, and the record goes to the next volume."""
        size = RECORD_HEADER.size + len(record.payload)
        if self.volume.status is not None or not self.volume.has_room(self._size + size):
            self.volume.mark_full(f"reached Maximum Volume Bytes ({self.volume.max_bytes})")
            raise VolumeFull(f"volume {self.volume.name} is full")
        self._add(record)

    def _add(self, record: Record) -> None:
        size = RECORD_HEADER.size + len(record.payload)
        if self._records and self._size + size > self.block_size:
            self.flush()
        if size > MAX_BLOCK_DATA:
            raise VolumeError(
                f"a record of {size} bytes is larger than a block may be ({MAX_BLOCK_DATA})"
            )
        # Header and payload are kept apart until the block is written (no per-record copy).
        self._parts.append(
            RECORD_HEADER.pack(
                self.session_id,
                self.session_time,
                record.file_index,
                record.stream,
                len(record.payload),
            )
        )
        self._parts.append(record.payload)
        self._records.append(record)
        self._size += size

    def flush(self) -> None:
        """Write the block being filled (if any)."""
        if not self._records:
            return
        parts: list[bytes | memoryview] = self._parts
        if len(parts) > JOIN_PARTS_ABOVE and self._size < len(parts) * JOIN_PART_BYTES:
            # Many small records (a tree of small files): one C-level copy of the block costs less
            # than a writev entry, a memoryview and a CRC call per header and per payload.
            parts = [b"".join(parts)]
        pos = self.volume.write_block(self.session_id, self.session_time, parts, self._size)
        if self.first is None:
            self.first = pos
        self.last = pos
        self.written += BLOCK_HEADER.size + self._size
        for record in self._records:
            if record.file_index > 0:
                if not self.first_index:
                    self.first_index = record.file_index
                self.last_index = max(self.last_index, record.file_index)
                if record.stream == Stream.ATTRIBUTES:
                    self.files += 1
        self._records, self._parts, self._size = [], [], 0

    def end(self, label: SessionLabel) -> None:
        """Close the session with its end label and make it durable."""
        self._add(Record(EOS_LABEL, 0, _pack_label(label)))
        self.flush()
        self.volume.sync()

    def unwritten(self) -> list[Record]:
        """The data records of the block that was not written (labels are not carried over)."""
        records = [r for r in self._records if r.file_index > 0]
        self._records, self._parts, self._size = [], [], 0
        return records


class VolumeWriter:
    """One session at a time on a volume of its own (offline tools and tests)."""

    def __init__(
        self, path: Path, max_bytes: int | None = None, block_size: int = BLOCK_SIZE
    ) -> None:
        self.appender = VolumeAppender(path, max_bytes)
        self.block_size = block_size
        self._session: SessionWriter | None = None

    @property
    def size(self) -> int:
        return self.appender.size

    def start_session(self, label: SessionLabel) -> None:
        self._session = SessionWriter(
            self.appender, label.session_id, label.session_time, self.block_size
        )
        self._session.start(label)

    def write(self, session_id: int, session_time: int, record: Record) -> None:
        assert self._session is not None and (session_id, session_time) == (
            self._session.session_id,
            self._session.session_time,
        )
        self._session.write(record)

    def flush(self) -> None:
        if self._session is not None:
            self._session.flush()

    def end_session(self, label: SessionLabel) -> None:
        assert self._session is not None
        self._session.end(label)
        self._session = None

    def close(self) -> None:
        if self._session is not None:
            with contextlib.suppress(VolumeError, OSError):
                self._session.flush()
        self.appender.close()
