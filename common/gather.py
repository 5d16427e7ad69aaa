"""Gathered writes: many buffers leave in as few system calls as the kernel allows, none joined."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable
from typing import Final

IOV_MAX: Final = 512  # buffers per call (Linux allows 1024)


def write_all(
    write: Callable[[list[memoryview]], int], parts: Iterable[bytes | bytearray | memoryview]
) -> None:
    """Write every byte of `parts`, in order, with `write` (os.writev on a file, socket.sendmsg).

    A short write (a signal, a full disk's last bytes) leaves the rest of its buffer for the next
    call; an error (ENOSPC, EPIPE) propagates.
    """
    pending = deque(memoryview(part).cast("B") for part in parts if len(part))
    while pending:
        written = write(list(itertools.islice(pending, IOV_MAX)))
        while written:  # drop what was written
            head = pending[0]
            if written < len(head):
                pending[0] = head[written:]
                break
            written -= len(head)
            pending.popleft()
