"""Volume I/O that bypasses the page cache (O_DIRECT), with the buffered path as the fallback.

A backup volume is written once and read rarely, so caching it only costs: every buffered write
copies the data into new page-cache pages (on the VM of docs/performance.md new pages cost so much
that `dd` writes 230 MB/s buffered and 1.5 GB/s with O_DIRECT), evicts pages other programs use,
and leaves the whole job dirty for the fsync that confirms it, which then waits for all of it at
once. With O_DIRECT the data goes from our buffer to the device as the job runs.

Linux's rules for O_DIRECT: the buffer's address, the file offset and the length are multiples of
the device's logical block size. ALIGN (4 KiB) is a multiple of every common one (512 B, 4 KiB); a
file system that refuses the flag (tmpfs before Linux 6.6) or our alignment answers EINVAL, and the
callers then use buffered I/O.
"""

from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from common.aligned import ALIGN, Pwrite, pwrite_all, release

READ_CHUNK: Final = 4 * 1024 * 1024  # one direct read: ~1.5 GB/s on a virtio disk (1 MiB: ~1.3)


def _down(n: int) -> int:
    return n - n % ALIGN


def _up(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def open_direct(path: Path, flags: int) -> int | None:
    """`path` opened with O_DIRECT added to `flags`; None where the file system refuses it."""
    try:
        return os.open(path, flags | os.O_DIRECT)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return None
        raise


class DirectAppend:
    """Appends data at the end of one file with O_DIRECT; one caller at a time (the volume's lock).

    A write starts at the file-system block that holds the current end: the bytes of that block
    before the end (`tail`, kept in memory) are written again, unchanged, so a torn or failed write
    never alters what was already on disk. The write's last block is padded with zeros, so the file
    may be up to ALIGN - 1 bytes longer than its data until the owner cuts it back (`padded`); a
    crash before that leaves a zeroed tail, which opening the volume for append removes."""

    def __init__(self, fd: int, end: int, tail: bytes, pwrite: Pwrite = os.pwrite) -> None:
        self._fd = fd
        self.end = end
        self._tail = tail
        self._pwrite = pwrite
        self._buf = mmap.mmap(-1, 2 * 1024 * 1024)  # page-aligned; grows for a larger block
        self.padded = False  # the file ends with zeros past `end`

    @classmethod
    def open(cls, path: Path, end: int, pwrite: Pwrite = os.pwrite) -> DirectAppend | None:
        """An appender at byte `end` of `path`; None where the file system refuses O_DIRECT."""
        fd = open_direct(path, os.O_WRONLY)
        if fd is None:
            return None
        try:
            with path.open("rb") as f:  # the bytes of the end's block before the end
                f.seek(_down(end))
                tail = f.read(end - _down(end))
            if len(tail) != end - _down(end):
                raise OSError(errno.EIO, f"{path} is shorter than byte {end}")
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, end, tail, pwrite)

    def write(self, parts: Sequence[bytes | memoryview], length: int) -> None:
        """Write `parts` (`length` bytes in all) at the end; raises OSError (EINVAL: the device
        wants another alignment, nothing was written)."""
        tail = self._tail
        start = self.end - len(tail)
        total = len(tail) + length
        padded = _up(total)
        if padded > len(self._buf):
            release(self._buf)
            self._buf = mmap.mmap(-1, padded)
        with memoryview(self._buf) as view:
            pos = len(tail)
            view[:pos] = tail
            for part in parts:
                n = len(part)
                view[pos : pos + n] = part
                pos += n
            if pos != total:
                raise ValueError(f"parts hold {pos - len(tail)} bytes, not {length}")
            view[total:padded] = bytes(padded - total)
            pwrite_all(self._fd, view[:padded], start, direct=True, pwrite=self._pwrite)
            self._tail = bytes(view[_down(total) : total])
        self.end += length
        self.padded = padded != total

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        release(self._buf)


class DirectReader:
    """A read-only file through O_DIRECT: the calls the volume reader makes (read, seek, tell),
    served from aligned reads of READ_CHUNK bytes."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buf = mmap.mmap(-1, READ_CHUNK)
        self._start = 0  # the file offset the buffer holds from
        self._len = 0  # valid bytes in the buffer
        self._pos = 0

    @classmethod
    def open(cls, path: Path) -> DirectReader | None:
        fd = open_direct(path, os.O_RDONLY)
        return None if fd is None else cls(fd)

    def __enter__(self) -> DirectReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            self._pos = offset
        elif whence == os.SEEK_CUR:
            self._pos += offset
        else:
            raise ValueError("DirectReader seeks from the start or the current position only")
        return self._pos

    def read(self, n: int = -1) -> bytes:
        """Up to `n` bytes from the current position (fewer only at the end of the file)."""
        if n < 0:
            raise ValueError("DirectReader reads a given number of bytes")
        pieces: list[bytes] = []
        want = n
        while want > 0:
            at = self._pos - self._start
            if not 0 <= at < self._len:
                if not self._fill():
                    break
                continue
            take = min(want, self._len - at)
            pieces.append(self._buf[at : at + take])
            self._pos += take
            want -= take
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _fill(self) -> bool:
        """Read the aligned chunk that holds the current position; False at the end of the file."""
        self._start = _down(self._pos)
        self._len = 0
        got = os.preadv(self._fd, [self._buf], self._start)
        self._len = got
        return got > self._pos - self._start

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            release(self._buf)
