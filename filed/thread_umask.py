"""A restore thread's own umask of 0, so a file is created with its final mode and needs no chmod.

The daemons run with umask 027 (`common.runtime.DAEMON_UMASK`): a restored 0644 file created with
mode 0644 comes out 0640, so the writer used to create every file 0600 and `fchmod` it at the
end, one more system call per file (and the kernel's ACL check behind it). A umask is a
process's, shared by its threads, and the daemon's own files must keep 027; but Linux lets one
thread stop sharing it: `unshare(CLONE_FS)` gives the calling thread its own copy of the umask,
with the current and root directories (a restore reaches every file through a descriptor).
`exact_modes` sets that thread's umask to 0 for the duration of a block and puts it back after.

The copy is the thread's for good: it keeps the umask and working directory the process had when
the thread first asked, and a thread it starts shares them (umask 0 inside the block). That
holds because the daemons set both once at start-up and a restore's feeding threads start none;
a daemon that changed either later would have to change it in these threads too.

Where the call is refused (not Linux, a seccomp filter) or fails, `exact_modes` yields False and
the writer keeps creating files 0600 and setting the mode at the end, as before.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

CLONE_FS: Final = 0x00000200  # linux/sched.h


class _Thread(threading.local):
    own: bool | None = None  # None: not tried in this thread yet


_state = _Thread()


def _libc() -> ctypes.CDLL | None:
    if sys.platform != "linux":
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)  # the process's own symbols: libc's unshare
    except OSError:
        return None


_LIBC: Final = _libc()


def _unshare_fs() -> bool:
    """Whether the calling thread now has a umask of its own."""
    if _LIBC is None:
        return False
    try:
        return int(_LIBC.unshare(CLONE_FS)) == 0
    except AttributeError:  # no unshare in this libc
        return False


def own_umask() -> bool:
    """Make the calling thread's umask its own (once per thread); whether it is."""
    if _state.own is None:
        _state.own = _unshare_fs()
    return _state.own


@contextmanager
def exact_modes() -> Iterator[bool]:
    """Umask 0 in this thread alone while the block runs; yields whether that holds (else the
    process's umask applies, unchanged, and modes given at creation are masked by it)."""
    if not own_umask():
        yield False
        return
    old = os.umask(0)
    try:
        yield True
    finally:
        os.umask(old)
