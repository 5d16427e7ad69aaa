"""Writes with O_DIRECT: the alignment they need and the rule for a short one (Storage Daemon
volumes, File Daemon restores)."""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
from collections.abc import Callable
from typing import Final

ALIGN: Final = 4096  # a multiple of every common logical block size (512 B, 4 KiB)

Pwrite = Callable[[int, memoryview, int], int]


def pwrite_all(
    fd: int, data: memoryview, offset: int, *, direct: bool, pwrite: Pwrite | None = None
) -> None:
    """Write all of `data` at `offset`. A write that takes nothing (no room: a full disk answers
    ENOSPC on the next call) or, with O_DIRECT, a part of a sector is an error, never papered over."""
    write = pwrite or os.pwrite
    done = 0
    while done < len(data):
        n = write(fd, data[done:], offset + done)
        if n <= 0 or (direct and n % ALIGN):
            what = "short direct write" if direct else "short write"
            raise OSError(errno.ENOSPC if n <= 0 else errno.EIO, what)
        done += n


def release(buf: mmap.mmap) -> None:
    """Unmap `buf` now, or when the last view of it goes (a traceback may still hold one)."""
    with contextlib.suppress(BufferError):
        buf.close()
