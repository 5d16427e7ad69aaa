"""The accurate list of an Incremental/Differential, held in bounded memory.

The Director sends (path, mtime_ns, ctime_ns, size, mode) for every file of the previous backup
chain. A dict of them cost about 500 bytes per path (527 MB at a million files); here a path costs
about 56 bytes: its fields sit in typed arrays, a hash table of array indexes finds them, and the
paths themselves go to an unlinked temporary file in the File Daemon's working directory, read back
only for the files that were not seen again (the deleted ones).

A path is found by its 64-bit `hash()` (the table slot) and checked by a second, independent
32-bit CRC: two different paths of one list agree on both with a probability of about 1e-17 at a
million files, and even then the stat fields would have to match as well to hide a change.
"""

from __future__ import annotations

import os
import tempfile
import zlib
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

EMPTY: Final = -1
MIN_SLOTS: Final = 1024
WRITE_BUFFER: Final = 1 << 20

Entry = tuple[bytes, int, int, int, int]  # path, mtime_ns, ctime_ns, size, mode (AccurateBatch)


@dataclass(frozen=True, slots=True)
class AccurateEntry:
    """What the previous backup chain recorded for a path (accurate mode)."""

    mtime_ns: int
    ctime_ns: int
    size: int
    mode: int


class AccurateList:
    """The previous state of every path: `add` batches as they arrive, then `lookup` and
    `mark_seen` during the walk, then `unseen` for the paths the walk did not find."""

    def __init__(self, directory: Path | None = None) -> None:
        self._paths: IO[bytes] = tempfile.TemporaryFile(  # noqa: SIM115  # closed by close()
            prefix="strongroom-accurate-", dir=directory, buffering=WRITE_BUFFER
        )
        self._hashes = array("q")
        self._checks = array("I")
        self._mtimes = array("q")
        self._ctimes = array("q")
        self._sizes = array("q")
        self._modes = array("I")
        self._offsets = array("Q", [0])
        self._slots = array("i", [EMPTY]) * MIN_SLOTS
        self._mask = MIN_SLOTS - 1
        self._seen = bytearray()
        self._sorted = True  # the paths arrived in byte order: the unseen ones need no sort
        self._last = b""
        self._max = b""  # the greatest path so far: a greater one cannot be a repeat

    @classmethod
    def from_mapping(
        cls, entries: Mapping[bytes, AccurateEntry], directory: Path | None = None
    ) -> AccurateList:
        accurate = cls(directory)
        accurate.add((path, e.mtime_ns, e.ctime_ns, e.size, e.mode) for path, e in entries.items())
        return accurate

    def __len__(self) -> int:
        return len(self._hashes)

    # -- filling ----------------------------------------------------------------------------

    def add(self, entries: Iterable[Entry]) -> None:
        """Take a batch of the Director's list; a path sent twice keeps its last fields."""
        write = self._paths.write
        for path, mtime_ns, ctime_ns, size, mode in entries:
            if path > self._max:  # after every path so far (the Director sends them in order)
                self._max = path
            else:
                known = self.lookup(path)
                if known is not None:
                    self._mtimes[known], self._ctimes[known] = mtime_ns, ctime_ns
                    self._sizes[known], self._modes[known] = size, mode
                    continue
            index = len(self._hashes)
            if 2 * (index + 1) > len(self._slots):
                self._grow()
            self._hashes.append(hash(path))
            self._checks.append(zlib.crc32(path))
            self._mtimes.append(mtime_ns)
            self._ctimes.append(ctime_ns)
            self._sizes.append(size)
            self._modes.append(mode)
            write(path)
            self._offsets.append(self._offsets[-1] + len(path))
            self._seen.append(0)
            self._place(index)
            if path < self._last:
                self._sorted = False
            self._last = path

    def _place(self, index: int) -> None:
        slots, mask = self._slots, self._mask
        slot = self._hashes[index] & mask
        while slots[slot] != EMPTY:
            slot = (slot + 1) & mask
        slots[slot] = index

    def _grow(self) -> None:
        """Double the table (kept at most half full, so a lookup probes about 1.5 slots)."""
        size = 2 * len(self._slots)
        self._slots = array("i", [EMPTY]) * size
        self._mask = size - 1
        for index in range(len(self._hashes)):
            self._place(index)

    # -- the walk ---------------------------------------------------------------------------

    def lookup(self, path: bytes) -> int | None:
        """The index of `path` in the list, or None when the previous backup did not have it."""
        slots, mask, hashes = self._slots, self._mask, self._hashes
        h = hash(path)
        slot = h & mask
        check = -1
        while (index := slots[slot]) != EMPTY:
            if hashes[index] == h:
                if check < 0:
                    check = zlib.crc32(path)
                if self._checks[index] == check:
                    return index
            slot = (slot + 1) & mask
        return None

    def get(self, path: bytes) -> AccurateEntry | None:
        index = self.lookup(path)
        return None if index is None else self.entry(index)

    def entry(self, index: int) -> AccurateEntry:
        return AccurateEntry(
            self._mtimes[index], self._ctimes[index], self._sizes[index], self._modes[index]
        )

    def unchanged(self, index: int, mtime_ns: int, ctime_ns: int, size: int, mode: int) -> bool:
        return (
            self._mtimes[index] == mtime_ns
            and self._ctimes[index] == ctime_ns
            and self._sizes[index] == size
            and self._modes[index] == mode
        )

    def mark_seen(self, index: int) -> None:
        self._seen[index] = 1

    # -- after the walk ---------------------------------------------------------------------

    def unseen(self) -> Iterator[tuple[bytes, AccurateEntry]]:
        """(path, entry) of every path the walk did not see, in byte order of the paths."""
        self._paths.flush()
        fd = self._paths.fileno()
        offsets = self._offsets

        def path_of(index: int) -> bytes:
            return os.pread(fd, offsets[index + 1] - offsets[index], offsets[index])

        indexes = self._unseen_indexes()
        if self._sorted:
            for index in indexes:
                yield path_of(index), self.entry(index)
            return
        for path, index in sorted((path_of(index), index) for index in indexes):
            yield path, self.entry(index)

    def _unseen_indexes(self) -> Iterator[int]:
        seen = self._seen
        index = seen.find(0)
        while index >= 0:
            yield index
            index = seen.find(0, index + 1)

    def close(self) -> None:
        self._paths.close()
