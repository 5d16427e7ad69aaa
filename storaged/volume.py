"""The on-disk volume format of File devices: a label, then checksummed blocks of records.

See docs/volume-format.md. This module is pure file I/O (no asyncio): the Storage Daemon runs it
in worker threads, and offline tools and tests call it directly.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import struct
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any, Final, Protocol

from zlib_ng import zlib_ng

from common import gather
from protocol import codec
from protocol.errors import DecodeError
from protocol.records import Record
from storaged.direct_io import DirectReader

FORMAT_VERSION: Final = 2  # 2: every block names its session (blocks of sessions interleave)
BLOCK_MAGIC: Final = b"SRB2"
BLOCK_HEADER: Final = struct.Struct(
    ">4sIIIII"
)  # magic, block number, data length, session id, session time, crc32
BLOCK_MAGIC_V1: Final = b"SRB1"  # format 1 (still read): no session in the header
BLOCK_HEADER_V1: Final = struct.Struct(">4sIII")  # magic, block number, data length, crc32
RECORD_HEADER: Final = struct.Struct(
    ">IIiiI"
)  # session id, session time, file index, stream, length
BLOCK_SIZE: Final = 1024 * 1024  # a block is flushed before it would grow past this
# A restore's payloads shorter than this are copied out of their block, not viewed: a memoryview
# object is 184 bytes, and a million files of a few bytes sent as views raised the SD's peak RSS
# from 114 to 144 MB (bench/million_files.py).
VIEW_MIN: Final = 256
MAX_BLOCK_DATA: Final = (
    64 * 1024 * 1024
)  # a header announcing more is corrupt, not a reason to allocate
_CRC_PREFIX: Final = struct.Struct(">IIII")  # what a format-2 block checksum covers before its data
_CRC_PREFIX_V1: Final = struct.Struct(">II")

# zlib's CRC-32 (the same values), about ten times faster: 2 GiB in 0.03 s against 0.29 s here, and
# a copy checks every block it reads and sums every block it writes.
_crc32 = zlib_ng.crc32

# Label records use negative file indexes, as Bareos does.
VOL_LABEL: Final = -2
SOS_LABEL: Final = -4
EOS_LABEL: Final = -5
VOLUME_FILE_MODE: Final = (
    0o600  # volumes hold a client's files: readable by the Storage Daemon only
)


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


def _encode_record(
    session_id: int, session_time: int, file_index: int, stream: int, payload: bytes
) -> bytes:
    return RECORD_HEADER.pack(session_id, session_time, file_index, stream, len(payload)) + payload


def block_crc(
    number: int,
    length: int,
    session_id: int,
    session_time: int,
    parts: Iterable[bytes | memoryview],
) -> int:
    """The checksum of a format-2 block: its number, length and session, then its data."""
    crc = _crc32(_CRC_PREFIX.pack(number, length, session_id, session_time))
    for part in parts:
        crc = _crc32(part, crc)
    return crc


def block_header(number: int, length: int, session_id: int, session_time: int, crc: int) -> bytes:
    return BLOCK_HEADER.pack(BLOCK_MAGIC, number, length, session_id, session_time, crc)


def fsync_directory(path: Path) -> None:
    """Make a new or renamed entry of `path` durable (the file's own fsync does not cover its name)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class VolumeExists(VolumeError):
    """The volume file is there already (another job or the console labeled it first)."""


def label_volume(path: Path, label: VolumeLabel) -> None:
    """Create a new volume file holding only its label (refuses to overwrite anything).

    The label is written and fsynced under a temporary name, then linked to `path`, so the volume
    appears whole or not at all: a job that finds the file (two jobs given the same new volume
    label it at once) always reads its label. The file is created 0600 and made durable with its
    directory entry, so a labeled volume that the catalog knows of survives a crash."""
    data = _encode_record(0, 0, VOL_LABEL, 0, _pack_label(label))
    if path.exists():
        raise VolumeExists(f"volume file {path} already exists; refusing to relabel it")
    temp = path.with_name(f".{path.name}.label-{os.getpid()}-{threading.get_ident()}")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, VOLUME_FILE_MODE)
    except OSError as exc:
        raise VolumeError(f"cannot create volume {path}: {exc.strerror}") from exc
    try:
        try:
            gather.write_all(
                partial(os.writev, fd),
                [block_header(0, len(data), 0, 0, block_crc(0, len(data), 0, 0, [data])), data],
            )
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temp, path)  # fails if the name exists: no relabeling, no half-made volume
        except FileExistsError as exc:
            raise VolumeExists(
                f"volume file {path} already exists; refusing to relabel it"
            ) from exc
        fsync_directory(path.parent)
    except OSError as exc:
        raise VolumeError(f"cannot label volume {path}: {exc.strerror}") from exc
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()


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


class Readable(Protocol):
    """What reading blocks needs of an open volume: a buffered file or a `DirectReader`."""

    def read(self, n: int = ..., /) -> bytes: ...
    def seek(self, offset: int, whence: int = ..., /) -> int: ...
    def tell(self) -> int: ...


@contextlib.contextmanager
def open_volume(path: Path, direct_io: bool = True) -> Iterator[Readable]:
    """`path` open for reading blocks: with O_DIRECT where the file system allows it, unless
    `direct_io` is off (a volume is read once, for a restore or a copy, and caching it would only
    evict what others use)."""
    direct = DirectReader.open(path) if direct_io else None
    if direct is not None:
        with direct:
            yield direct
        return
    with path.open("rb") as f:
        yield f


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """A block's header as read: where it is, how long, whose (None for a format-1 block)."""

    number: int
    offset: int
    length: int
    session: tuple[int, int] | None
    crc: int

    @property
    def size(self) -> int:
        """Header and data: where the next block starts, counted from this one."""
        return (
            BLOCK_HEADER.size if self.session is not None else BLOCK_HEADER_V1.size
        ) + self.length

    def check(self, data: bytes | memoryview) -> bool:
        if self.session is None:
            return _crc32(data, _crc32(_CRC_PREFIX_V1.pack(self.number, self.length))) == self.crc
        return block_crc(self.number, self.length, *self.session, [data]) == self.crc


def read_block_header(f: Readable, path: Path, expect: int | None) -> BlockHeader | None:
    """The next block header (format 1 or 2); None at a clean end of file."""
    offset = f.tell()
    head = f.read(BLOCK_HEADER_V1.size)
    if not head:
        return None
    where = expect if expect is not None else 0
    if len(head) < BLOCK_HEADER_V1.size:
        raise VolumeCorrupt(path, where, offset, "truncated block header")
    magic = head[:4]
    if magic == BLOCK_MAGIC:
        rest = f.read(BLOCK_HEADER.size - BLOCK_HEADER_V1.size)
        if len(rest) < BLOCK_HEADER.size - BLOCK_HEADER_V1.size:
            raise VolumeCorrupt(path, where, offset, "truncated block header")
        _magic, number, length, session_id, session_time, crc = BLOCK_HEADER.unpack(head + rest)
        header = BlockHeader(number, offset, length, (session_id, session_time), crc)
    elif magic == BLOCK_MAGIC_V1:
        _magic, number, length, crc = BLOCK_HEADER_V1.unpack(head)
        header = BlockHeader(number, offset, length, None, crc)
    else:
        raise VolumeCorrupt(path, where, offset, f"bad block magic {magic!r}")
    if length > MAX_BLOCK_DATA:
        raise VolumeCorrupt(path, number, offset, f"impossible block length {length}")
    if expect is not None and number != expect:
        raise VolumeCorrupt(path, number, offset, f"block number {number}, expected {expect}")
    return header


def _read_block(
    f: Readable, path: Path, expect: int | None, session: tuple[int, int] | None = None
) -> tuple[BlockHeader, bytes | None] | None:
    """The next block and its checked data; None at a clean end of file. With `session`, a
    format-2 block of another session is skipped unread (its data is None)."""
    header = read_block_header(f, path, expect)
    if header is None:
        return None
    if session is not None and header.session is not None and header.session != session:
        f.seek(header.length, os.SEEK_CUR)
        return header, None
    data = f.read(header.length)
    if len(data) < header.length:
        raise VolumeCorrupt(
            path,
            header.number,
            header.offset,
            f"truncated block ({len(data)} of {header.length} bytes)",
        )
    if not header.check(data):
        raise VolumeCorrupt(
            path,
            header.number,
            header.offset,
            "checksum mismatch (the data on disk changed after it was written)",
        )
    return header, data


def _split(
    data: bytes, path: Path, number: int, offset: int, copy_small: bool = True
) -> list[tuple[int, int, int, int, bytes | memoryview]]:
    """The records of a block. A large payload is a view of the block (no copy); one smaller than an
    eighth of it is copied, so that a few selected small records (a restore of some files) do not
    keep whole blocks alive: a view holds at most eight times its own size. Without `copy_small`
    only payloads shorter than VIEW_MIN are copied (a view object is larger than they are) and
    the caller copies what it keeps of a block it keeps little of (`select_records`)."""
    pos = 0
    size = len(data)
    small = size // 8 if copy_small else VIEW_MIN  # payloads shorter than this are copied
    view = memoryview(data)
    unpack = RECORD_HEADER.unpack_from
    head = RECORD_HEADER.size
    out: list[tuple[int, int, int, int, bytes | memoryview]] = []
    while pos < size:
        if size - pos < head:
            raise VolumeCorrupt(path, number, offset, "record header crosses the block end")
        session_id, session_time, file_index, stream, length = unpack(data, pos)
        pos += head
        end = pos + length
        if end > size:
            raise VolumeCorrupt(path, number, offset, "record crosses the block end")
        out.append(
            (
                session_id,
                session_time,
                file_index,
                stream,
                view[pos:end] if length >= small else data[pos:end],
            )
        )
        pos = end
    return out


def _blocks(
    f: Readable,
    path: Path,
    first_block: int,
    session: tuple[int, int] | None = None,
    starts_session: bool = False,
) -> Iterator[tuple[BlockHeader, bytes | None]]:
    """The checked blocks from the current position on; with `session`, blocks of other sessions are
    skipped unread (data None). With `starts_session`, the first block must be that session's (a
    format-2 header says so)."""
    expect = first_block
    while (block := _read_block(f, path, expect, session)) is not None:
        header = block[0]
        if (
            starts_session
            and expect == first_block
            and session is not None
            and header.session not in (None, session)
        ):
            sid, stime = header.session
            raise VolumeError(
                f"volume {path.name}: block {header.number} at byte offset {header.offset} belongs to "
                f"session {sid}/{stime}, not {session[0]}/{session[1]}"
            )
        expect = header.number + 1
        yield block


def _records(
    f: Readable,
    path: Path,
    first_block: int,
    session: tuple[int, int] | None = None,
    starts_session: bool = False,
) -> Iterator[VolumeRecord]:
    """The records from the current position on (see `_blocks`)."""
    for header, data in _blocks(f, path, first_block, session, starts_session):
        if data is None:
            continue
        where = Position(header.number, header.offset)
        for sid, stime, index, stream, payload in _split(data, path, header.number, header.offset):
            yield VolumeRecord(sid, stime, index, stream, payload, where)


class VolumeReader:
    """Every record of a volume in order, checking each block."""

    def __init__(self, path: Path, direct_io: bool = True) -> None:
        self.path = path
        self.direct_io = direct_io
        self.label = read_label(path)

    def records(
        self, start: Position | None = None, session: tuple[int, int] | None = None
    ) -> Iterator[VolumeRecord]:
        """Records from `start` (the beginning by default); with `session`, only the blocks that
        can hold that session's records are read (format-2 blocks of other sessions are skipped),
        and a `start` must be where that session begins."""
        try:
            with open_volume(self.path, self.direct_io) as f:
                if start is not None:
                    f.seek(start.offset)
                yield from _records(
                    f,
                    self.path,
                    start.block_number if start else 0,
                    session,
                    starts_session=start is not None,
                )
        except FileNotFoundError as exc:
            raise VolumeError(f"volume file {self.path} not found") from exc

    def blocks(
        self, start: Position | None = None, session: tuple[int, int] | None = None
    ) -> Iterator[tuple[BlockHeader, bytes | None]]:
        """The checked blocks from `start` (see `records`); blocks of other sessions have no data."""
        try:
            with open_volume(self.path, self.direct_io) as f:
                if start is not None:
                    f.seek(start.offset)
                yield from _blocks(
                    f,
                    self.path,
                    start.block_number if start else 0,
                    session,
                    starts_session=start is not None,
                )
        except FileNotFoundError as exc:
            raise VolumeError(f"volume file {self.path} not found") from exc

    def sessions(self) -> Iterator[SessionLabel]:
        """Start- and end-of-session labels, for listing a volume or rebuilding a catalog."""
        for record in self.records():
            if record.file_index in (SOS_LABEL, EOS_LABEL):
                yield _unpack_label(SessionLabel, record.payload, self.path)


class IndexSelection:
    """Membership in a set of inclusive file-index ranges in O(log ranges).

    A restore of the newest state of a Full and its Incrementals selects the Full's files around
    every file a later job replaced: thousands of ranges, tested against every record read."""

    __slots__ = ("_his", "_los")

    def __init__(self, ranges: Iterable[tuple[int, int]]) -> None:
        merged: list[list[int]] = []
        for lo, hi in sorted(ranges):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        self._los = [lo for lo, _hi in merged]
        self._his = [hi for _lo, hi in merged]

    def __contains__(self, index: int) -> bool:
        n = bisect.bisect_right(self._los, index) - 1
        return n >= 0 and index <= self._his[n]

    @property
    def last(self) -> int:
        return self._his[-1] if self._his else 0


def select_records(
    reader: VolumeReader, entries: Iterable[BootstrapVolume]
) -> Iterator[tuple[BootstrapVolume, Record]]:
    """The data records a bootstrap selects from one volume (labels are never selected).

    Only the entry's session is read: its records may share the volume with other sessions' blocks.
    A session that is not where the catalog says it starts (or not on the volume at all) is an
    error naming the session and the place, never an empty result."""
    for entry in entries:
        if entry.volume_name != reader.label.volume_name:
            continue
        session = (entry.session_id, entry.session_time)
        wanted = IndexSelection(entry.file_indexes)
        last = wanted.last
        seen_session = False
        done = False
        for header, data in reader.blocks(entry.start, session):
            if data is None:
                continue
            chosen: list[Record] = []
            kept = 0  # bytes of this block that chosen payloads are views of
            for sid, stime, index, stream, payload in _split(
                data, reader.path, header.number, header.offset, copy_small=False
            ):
                if sid != session[0] or stime != session[1]:
                    if entry.start is not None and not seen_session:
                        # A format-1 block (no session in its header) where the session should begin.
                        raise _session_missing(
                            reader,
                            entry,
                            f"block {header.number} at byte offset "
                            f"{header.offset} holds session {sid}/{stime}",
                        )
                    continue
                seen_session = True
                if index == EOS_LABEL:
                    done = True
                    break
                if index > 0 and index in wanted:
                    chosen.append(Record(index, stream, payload))
                    if type(payload) is memoryview:
                        kept += len(payload)
                elif index > last:
                    done = True
                    break
            if kept and kept * 8 < len(data):
                # Little of the block is chosen: copies, so that views do not keep it alive (a
                # view of a block holds at most eight times what it shows, as `_split` keeps).
                chosen = [Record(r.file_index, r.stream, bytes(r.payload)) for r in chosen]
            for record in chosen:
                yield entry, record
            if done:
                break
        if not seen_session:
            where = (
                f" from block {entry.start.block_number} (byte offset {entry.start.offset}) on"
                if entry.start
                else ""
            )
            raise _session_missing(reader, entry, f"no record of it was found{where}")


def _session_missing(reader: VolumeReader, entry: BootstrapVolume, problem: str) -> VolumeError:
    return VolumeError(
        f"volume {reader.label.volume_name}: session {entry.session_id}/{entry.session_time} is not "
        f"where the catalog's JobMedia says: {problem}"
    )
