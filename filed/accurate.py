"""The accurate list of an Incremental/Differential, in memory that does not grow with the files.

The Director sends (path, mtime_ns, ctime_ns, size, mode) for every file of the previous backup
chain, a directory at a time (`director.catalog.walk.ChainReader`). Each batch goes straight to an
unlinked temporary file in the File Daemon's working directory, as runs of one directory's entries
(a name and four fields each, msgpack). What stays in memory is where each directory's runs lie
(about 200 bytes a directory) and one "seen" byte a path: 1 MB at a million paths, where a table
of every path cost 56 MB (and a dict of them 527 MB).

The walk reads a directory's entries back when it reaches the first of them (one `pread` a run)
and keeps the directories it used last, up to `CACHE_ENTRIES` entries, which holds the stack of
directories a depth-first walk is in the middle of. A directory of more than `LARGE_DIRECTORY`
entries is read into typed arrays (`_Table`, about 56 bytes an entry) instead of a dict (about
350), so that a single directory of a million files costs what the walk's own listing of it does. The paths it never marks seen are the deleted
ones; after the walk they are found a directory at a time, skipping every directory whose seen
bytes are all set without reading it.

A path sent twice (it should not be) keeps its last fields: a directory's runs are read in the
order they came and a later entry of a name replaces the earlier one, which is marked seen so it
is never reported deleted.
"""

from __future__ import annotations

import os
import tempfile
import zlib
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, Protocol

import msgpack

WRITE_BUFFER: Final = 1 << 20
CACHE_ENTRIES: Final = 32_768  # entries of the directories kept read
LARGE_DIRECTORY: Final = 4096  # entries above which a directory is read into a compact table
EMPTY: Final = -1

Entry = tuple[bytes, int, int, int, int]  # path, mtime_ns, ctime_ns, size, mode (AccurateBatch)
Known = tuple[int, int, int, int, int]  # index, mtime_ns, ctime_ns, size, mode
Run = tuple[int, int, int, int]  # offset in the file, length, index of its first entry, entries
Rows = tuple[tuple[bytes, int, int, int, int], ...]  # one run: name, mtime_ns, ctime_ns, size, mode


class Block(Protocol):
    """One directory's entries, found by name."""

    def get(self, name: bytes, /) -> Known | None: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True, slots=True)
class AccurateEntry:
    """What the previous backup chain recorded for a path (accurate mode)."""

    mtime_ns: int
    ctime_ns: int
    size: int
    mode: int


class AccurateList:
    """The previous state of every path: `add` batches as they arrive, then `find` (or `lookup`)
    and `mark_seen` during the walk, then `unseen` for the paths the walk did not find."""

    def __init__(
        self, directory: Path | None = None, *, cache_entries: int = CACHE_ENTRIES
    ) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile(  # noqa: SIM115  # closed by close()
            prefix="strongroom-accurate-", dir=directory, buffering=WRITE_BUFFER
        )
        self._end = 0  # bytes written (some may still sit in the write buffer)
        self._flushed = True
        self._runs: dict[bytes, list[Run]] = {}
        self._seen = bytearray()
        self._cache: OrderedDict[bytes, Block] = OrderedDict()
        self._cached = 0  # entries in the cache
        self._cache_entries = cache_entries
        self._head: bytes | None = None  # the directory of the last lookup, and its entries
        self._block: Block | None = None

    @classmethod
    def from_mapping(
        cls, entries: Mapping[bytes, AccurateEntry], directory: Path | None = None
    ) -> AccurateList:
        accurate = cls(directory)
        accurate.add((path, e.mtime_ns, e.ctime_ns, e.size, e.mode) for path, e in entries.items())
        return accurate

    def __len__(self) -> int:
        """Entries received (a path sent twice counts twice)."""
        return len(self._seen)

    # -- filling ----------------------------------------------------------------------------

    def add(self, entries: Iterable[Entry]) -> None:
        """Take a batch of the Director's list: one run per directory it holds."""
        groups: dict[bytes, list[tuple[bytes, int, int, int, int]]] = {}
        for path, mtime_ns, ctime_ns, size, mode in entries:
            cut = path.rfind(b"/") + 1
            head = path[:cut]
            rows = groups.get(head)
            if rows is None:
                rows = groups[head] = []
            rows.append((path[cut:], mtime_ns, ctime_ns, size, mode))
        for head, rows in groups.items():
            blob = msgpack.packb(rows)
            self._runs.setdefault(head, []).append(
                (self._end, len(blob), len(self._seen), len(rows))
            )
            self._file.write(blob)
            self._end += len(blob)
            self._seen.extend(bytes(len(rows)))
            if head in self._cache:  # rare: a directory sent in two parts, one already read
                self._cached -= len(self._cache.pop(head))
        self._flushed = False
        self._head = self._block = None

    # -- the walk ---------------------------------------------------------------------------

    def find(self, path: bytes) -> Known | None:
        """(index, mtime_ns, ctime_ns, size, mode) of `path`, or None when the previous backup
        did not have it."""
        cut = path.rfind(b"/") + 1
        head = path[:cut]
        if head != self._head:
            self._block = self._directory(head)
            self._head = head
        block = self._block
        return None if block is None else block.get(path[cut:])

    def lookup(self, path: bytes) -> int | None:
        """The index of `path` in the list, or None when the previous backup did not have it."""
        known = self.find(path)
        return None if known is None else known[0]

    def get(self, path: bytes) -> AccurateEntry | None:
        known = self.find(path)
        return None if known is None else AccurateEntry(*known[1:])

    def mark_seen(self, index: int) -> None:
        self._seen[index] = 1

    def _directory(self, head: bytes) -> Block | None:
        """One directory's entries, from the cache or read back (and cached)."""
        block = self._cache.get(head)
        if block is not None:
            self._cache.move_to_end(head)
            return block
        block = self._read(head)
        if block is None:
            return None
        self._cache[head] = block
        self._cached += len(block)
        while self._cached > self._cache_entries and len(self._cache) > 1:
            _, dropped = self._cache.popitem(last=False)
            self._cached -= len(dropped)
        return block

    def _read(self, head: bytes) -> Block | None:
        runs = self._runs.get(head)
        if runs is None:
            return None
        seen = self._seen
        entries = sum(run[3] for run in runs)
        if entries > LARGE_DIRECTORY:
            return _Table(self._rows(runs), seen, entries)
        block: dict[bytes, Known] = {}
        for first, rows in self._rows(runs):
            for index, (name, mtime_ns, ctime_ns, size, mode) in enumerate(rows, first):
                earlier = block.get(name)
                if earlier is not None:
                    seen[earlier[0]] = 1  # replaced by this later entry: never "deleted"
                block[name] = (index, mtime_ns, ctime_ns, size, mode)
        return block

    def _rows(self, runs: list[Run]) -> Iterator[tuple[int, Rows]]:
        """(index of the first entry, the entries) of each run, read back from the file."""
        if not self._flushed:
            self._file.flush()
            self._flushed = True
        fd = self._file.fileno()
        for offset, length, first, _count in runs:
            yield first, msgpack.unpackb(os.pread(fd, length, offset), use_list=False)

    # -- after the walk ---------------------------------------------------------------------

    def unseen(self) -> Iterator[tuple[bytes, AccurateEntry]]:
        """(path, entry) of every path the walk did not see: directory by directory in byte order
        of the directories, each one's entries in the order they came (the Director's: by name).
        A directory whose every entry was seen is not read."""
        seen = self._seen
        for head in sorted(self._runs):
            runs = self._runs[head]
            if all(seen.find(0, first, first + count) < 0 for _, _, first, count in runs):
                continue
            if head not in self._cache:
                self._read(head)  # marks the entries a later one of the same name replaced
            for first, rows in self._rows(runs):
                for index, (name, mtime_ns, ctime_ns, size, mode) in enumerate(rows, first):
                    if not seen[index]:
                        yield head + name, AccurateEntry(mtime_ns, ctime_ns, size, mode)

    def close(self) -> None:
        self._file.close()
        self._cache.clear()
        self._head = self._block = None


class _Table:
    """A large directory's entries in typed arrays, about 56 bytes an entry where a dict of
    tuples takes about 350 (a mail spool of a million files in one directory). Names are not
    kept: a name is found by its 64-bit `hash()` (the slot) and checked by an independent 32-bit
    CRC; two names of one directory agree on both with a probability of about 1e-17 at a million
    entries, and the stat fields would still have to match to hide a change."""

    def __init__(self, runs: Iterable[tuple[int, Rows]], seen: bytearray, entries: int) -> None:
        self._hashes = array("q")
        self._checks = array("I")
        self._indexes = array("q")
        self._mtimes = array("q")
        self._ctimes = array("q")
        self._sizes = array("q")
        self._modes = array("q")
        size = 16
        while size < 2 * entries:  # at most half full once every entry is in: no growing
            size *= 2
        self._slots = array("i", [EMPTY]) * size
        self._mask = size - 1
        for first, rows in runs:
            for index, (name, mtime_ns, ctime_ns, size, mode) in enumerate(rows, first):
                known = self._position(name)
                if known is not None:  # a later entry of the same name replaces the earlier one
                    seen[self._indexes[known]] = 1
                    self._indexes[known], self._mtimes[known] = index, mtime_ns
                    self._ctimes[known], self._sizes[known] = ctime_ns, size
                    self._modes[known] = mode
                    continue
                position = len(self._hashes)
                if 2 * (position + 1) > len(self._slots):
                    self._grow()
                self._hashes.append(hash(name))
                self._checks.append(zlib.crc32(name))
                self._indexes.append(index)
                self._mtimes.append(mtime_ns)
                self._ctimes.append(ctime_ns)
                self._sizes.append(size)
                self._modes.append(mode)
                self._place(position)

    def __len__(self) -> int:
        return len(self._hashes)

    def get(self, name: bytes, /) -> Known | None:
        position = self._position(name)
        if position is None:
            return None
        return (
            self._indexes[position],
            self._mtimes[position],
            self._ctimes[position],
            self._sizes[position],
            self._modes[position],
        )

    def _position(self, name: bytes) -> int | None:
        slots, mask, hashes = self._slots, self._mask, self._hashes
        h = hash(name)
        slot = h & mask
        check = -1
        while (position := slots[slot]) != EMPTY:
            if hashes[position] == h:
                if check < 0:
                    check = zlib.crc32(name)
                if self._checks[position] == check:
                    return position
            slot = (slot + 1) & mask
        return None

    def _place(self, position: int) -> None:
        slots, mask = self._slots, self._mask
        slot = self._hashes[position] & mask
        while slots[slot] != EMPTY:
            slot = (slot + 1) & mask
        slots[slot] = position

    def _grow(self) -> None:
        """Double the table (kept at most half full, so a lookup probes about 1.5 slots)."""
        size = 2 * len(self._slots)
        self._slots = array("i", [EMPTY]) * size
        self._mask = size - 1
        for position in range(len(self._hashes)):
            self._place(position)
