"""A large restored file's data written with O_DIRECT, through one aligned staging buffer.

Restoring gigabytes through the page cache fills it with data nobody reads soon, evicting what the
client's own programs use, and on a VM whose new pages are expensive it is most of a large
restore's CPU (docs/performance.md: 9 of the File Daemon's 14 CPU-seconds for 2 GiB). A file of
at least DIRECT_MIN bytes that arrives in order is staged in an aligned buffer and written
straight to the device, STAGE bytes per write; the unaligned end of the file is written through
the page cache as usual. A hole (a sparse file), a file system that refuses O_DIRECT, or a device
that wants another alignment sends the file back to buffered writes, with nothing lost.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
from typing import Final

from common.aligned import ALIGN, pwrite_all, release

STAGE: Final = 4 * 1024 * 1024
DIRECT_MIN: Final = 1024 * 1024  # smaller files: one synchronous device write each is not worth it


def _set_direct(fd: int, on: bool) -> None:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_DIRECT if on else flags & ~os.O_DIRECT)


class DirectData:
    """Stages one file at a time (the restore writer's current file); not thread-safe."""

    def __init__(self, enabled: bool = True) -> None:
        self.fd = -1  # the file being staged, -1 when none
        self._buf: mmap.mmap | None = None  # page-aligned, made on first use
        self._start = 0  # the file offset the buffer starts at (aligned)
        self._len = 0
        self._refused = not enabled  # off, or refused once by the file system or device

    def begin(self, fd: int, size: int) -> bool:
        """Stage the data of the new file `fd` (`size` bytes long) if that is worth it."""
        if self._refused or size < DIRECT_MIN:
            return False
        try:
            _set_direct(fd, True)
        except OSError:
            self._refused = True
            return False
        if self._buf is None:
            self._buf = mmap.mmap(-1, STAGE)
        self.fd, self._start, self._len = fd, 0, 0
        return True

    def write(self, fd: int, data: bytes | memoryview, offset: int) -> bool:
        """Take `data` at `offset` of `fd`; False when the caller writes it (not staged, or not
        where the staged data ends: everything staged is written first)."""
        if fd != self.fd or self.fd < 0:
            return False
        if offset != self._start + self._len:
            self.finish()
            return False
        assert self._buf is not None
        with memoryview(self._buf) as stage, memoryview(data).cast("B") as source:
            taken = 0
            while taken < len(source):
                n = min(STAGE - self._len, len(source) - taken)
                stage[self._len : self._len + n] = source[taken : taken + n]
                self._len += n
                taken += n
                if self._len == STAGE:
                    self._flush(stage, STAGE)
        return True

    def finish(self) -> None:
        """Write what is staged (the unaligned end through the page cache) and stop staging."""
        if self.fd < 0:
            return
        assert self._buf is not None
        with memoryview(self._buf) as stage:
            aligned = self._len - self._len % ALIGN
            if aligned:
                self._flush(stage, aligned)
            fd, rest = self.fd, self._len
            self.fd, self._len = -1, 0
            _set_direct(fd, False)
            if rest:
                pwrite_all(fd, stage[:rest], self._start, direct=False)

    def drop(self, fd: int) -> None:
        """Forget what is staged for `fd` (its file failed and is removed)."""
        if fd == self.fd:
            self.fd, self._len = -1, 0

    def close(self) -> None:
        if self._buf is not None:
            release(self._buf)
            self._buf = None

    def _flush(self, stage: memoryview, n: int) -> None:
        """Write the first `n` (aligned) staged bytes; keep the rest at the buffer's start."""
        try:
            pwrite_all(self.fd, stage[:n], self._start, direct=True)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            # The device wants another alignment (nothing was written): through the page cache.
            self._refused = True
            _set_direct(self.fd, False)
            pwrite_all(self.fd, stage[:n], self._start, direct=False)
        left = self._len - n
        stage[:left] = stage[n : self._len]
        self._start += n
        self._len = left
