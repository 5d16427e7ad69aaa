"""One restored file on disk: its node under a temporary name, its attributes, the rename into place."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable

from filed.backup import ACL_ACCESS, ACL_DEFAULT
from filed.restore_checks import FileFailed
from filed.restore_paths import printable
from protocol.attributes import FileAttributes, FileType


class Leftovers:
    """What must not outlive a restore: open descriptors, unfinished files, hidden carriers."""

    def __init__(self) -> None:
        self.fds: set[int] = set()
        self.paths: set[bytes] = set()

    def release(self) -> None:
        while self.fds:
            with contextlib.suppress(OSError):
                os.close(self.fds.pop())
        while self.paths:
            with contextlib.suppress(OSError):
                os.unlink(self.paths.pop())


def create_node(a: FileAttributes, path: bytes) -> int:
    """Create a file of the attributes' kind at `path`, which must not exist; a regular file's
    descriptor is returned (-1 for other kinds). Directories and hardlinks are the writer's."""
    kind = a.type
    if kind == FileType.REGULAR:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    if kind == FileType.SYMLINK:
        os.symlink(a.link_target, path)
    elif kind == FileType.FIFO:
        os.mkfifo(path, 0o600)
    elif kind in (FileType.CHAR_DEVICE, FileType.BLOCK_DEVICE):
        os.mknod(path, a.mode, a.rdev)
    else:
        raise FileFailed(f"cannot restore a {kind.name.lower()}")
    return -1


def install(temp: bytes, target: bytes, kind: FileType) -> None:
    """Put the complete file in its place, atomically replacing what the policy lets it replace."""
    if kind == FileType.HARDLINK:
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.lstat(temp), os.lstat(target)):
                os.unlink(temp)  # a link onto its own source: rename() would keep both names
                return
    os.rename(temp, target)


def apply_attributes(target: bytes, a: FileAttributes, *, privileged: bool, acl_access: bytes | None,
                     acl_default: bytes | None, xattrs: list[tuple[bytes, bytes]],
                     warn: Callable[[str], None]) -> None:
    """Owner, mode, ACLs, xattrs and times, in the order that keeps each one. What the system
    refuses (an owner without privileges, an unsupported xattr) is a warning; anything else raises."""
    if a.type == FileType.HARDLINK:
        return  # a hardlink shares its inode with the name that carried the data
    if privileged or a.uid == os.geteuid():
        try:
            os.lchown(target, a.uid, a.gid)
        except OSError as exc:
            warn(f"{printable(a.path)}: cannot set owner {a.uid}:{a.gid}: {exc.strerror}")
    if a.type != FileType.SYMLINK:
        os.chmod(target, stat.S_IMODE(a.mode))
        for acl_name, acl in ((ACL_ACCESS, acl_access), (ACL_DEFAULT, acl_default)):
            if acl is not None:
                try:
                    os.setxattr(target, acl_name, acl)
                except OSError as exc:
                    warn(f"{printable(a.path)}: cannot restore {acl_name}: {exc.strerror}")
    for name, value in xattrs:
        try:
            os.setxattr(target, name, value, follow_symlinks=False)
        except OSError as exc:
            warn(f"{printable(a.path)}: cannot restore xattr {name.decode(errors='replace')}: {exc.strerror}")
    os.utime(target, ns=(a.atime_ns, a.mtime_ns), follow_symlinks=False)
