"""One restored file on disk, by descriptor: its node (O_EXCL), its attributes, the rename of a replacement.

Every call names a file by (parent directory descriptor, one name) or by its own descriptor: nothing
here resolves a path, so a directory swapped for a symlink cannot redirect a write, a chmod or a
chown. Owner, mode, ACLs, xattrs and times go through the file's descriptor (`fchown`, `fchmod`,
`fsetxattr`, `futimens`); FIFOs and device nodes, which are not opened for I/O, through an O_PATH
descriptor (`/proc/self/fd/N`), and symlinks through their parent with AT_SYMLINK_NOFOLLOW.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from filed.backup import ACL_ACCESS, ACL_DEFAULT
from filed.restore_checks import FileFailed
from filed.restore_paths import DirWalker, printable
from protocol.attributes import FileAttributes, FileType

O_PATH: Final = getattr(os, "O_PATH", 0)
PROC_FD: Final = "/proc/self/fd"
# xattr namespaces that grant privileges (file capabilities, SELinux labels, IMA) or are only root's.
PRIVILEGED_XATTRS: Final = (b"security.", b"trusted.")


@dataclass
class Leftovers:
    """What must not outlive a restore: open descriptors, unfinished files, hidden carriers.
    Files are named by their components below `where` and removed through its descriptor."""

    walker: DirWalker | None = None
    fds: set[int] = field(default_factory=set)
    paths: set[tuple[bytes, ...]] = field(default_factory=set)

    def release(self) -> None:
        while self.fds:
            with contextlib.suppress(OSError):
                os.close(self.fds.pop())
        walker = self.walker
        while self.paths:
            parts = self.paths.pop()
            if walker is None:
                continue
            with contextlib.suppress(OSError):
                parent = walker.open_dir(parts[:-1], create=False)
                try:
                    os.unlink(parts[-1], dir_fd=parent)
                finally:
                    os.close(parent)
        if walker is not None:
            walker.close()
            with contextlib.suppress(OSError):
                os.close(walker.root_fd)
            self.walker = None


def create_node(a: FileAttributes, dir_fd: int, name: bytes, mode: int = 0o600) -> int:
    """Create a file of the attributes' kind as `name` in `dir_fd`, which must not exist there; a
    regular file's descriptor is returned (-1 for other kinds), open for writing whatever `mode`
    (its permission bits, masked by the umask or the directory's default ACL) says. Directories
    and hardlinks are the writer's."""
    kind = a.type
    if kind == FileType.REGULAR:
        return os.open(
            name,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            mode,
            dir_fd=dir_fd,
        )
    if kind == FileType.SYMLINK:
        os.symlink(a.link_target, name, dir_fd=dir_fd)
    elif kind == FileType.FIFO:
        os.mkfifo(name, 0o600, dir_fd=dir_fd)
    elif kind in (FileType.CHAR_DEVICE, FileType.BLOCK_DEVICE):
        os.mknod(name, stat.S_IFMT(a.mode) | 0o600, a.rdev, dir_fd=dir_fd)
    else:
        raise FileFailed(f"cannot restore a {kind.name.lower()}")
    return -1


def has_default_acl(dir_fd: int) -> bool:
    """Whether the directory has a default ACL, which masks the mode of a file made in it
    instead of the umask (a file system without xattrs has none; any other failure to tell:
    True, the careful answer)."""
    try:
        return ACL_DEFAULT in os.listxattr(dir_fd)
    except OSError as exc:
        return exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP)


def install(dir_fd: int, temp: bytes, name: bytes, kind: FileType) -> None:
    """Put the complete file in its place, atomically replacing what the policy lets it replace."""
    if kind == FileType.HARDLINK:
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(
                os.stat(temp, dir_fd=dir_fd, follow_symlinks=False),
                os.stat(name, dir_fd=dir_fd, follow_symlinks=False),
            ):
                os.unlink(
                    temp, dir_fd=dir_fd
                )  # a link onto its own source: rename() would keep both
                return
    os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


@dataclass(frozen=True)
class Policy:
    """What a restore may bring back verbatim. `strip` (restoring to another client or to a `where`
    other than `/`, unless the restore asks for privileged content): setuid/setgid bits are cleared
    and security.*/trusted.* xattrs skipped (device nodes are skipped by the writer)."""

    privileged: bool  # this process may chown to anyone
    strip: bool
    euid: int = field(default_factory=os.geteuid)


def safe_mode(a: FileAttributes, policy: Policy) -> int:
    mode = stat.S_IMODE(a.mode)
    if policy.strip and a.type != FileType.DIRECTORY:
        mode &= ~(stat.S_ISUID | stat.S_ISGID)
    return mode


def apply_attributes(
    a: FileAttributes,
    *,
    fd: int,
    dir_fd: int,
    name: bytes,
    policy: Policy,
    acl_access: bytes | None,
    acl_default: bytes | None,
    xattrs: Sequence[tuple[bytes, bytes]],
    warn: Callable[[str], None],
    owned: bool = False,
    mode_set: bool = False,
) -> None:
    """Owner, mode, ACLs, xattrs and times, in the order that keeps each one, on the file's own
    descriptor `fd` (-1: the node `name` in `dir_fd` is reached without following it). `owned`:
    the node was just made and already has the owner and group the attributes name (no chown).
    `mode_set`: it was made with the mode `safe_mode` gives, which has no setuid, setgid or
    sticky bit for a chown to clear (no chmod).
    What the system refuses (an owner without privileges, an unsupported xattr) is a warning;
    anything else raises."""
    if a.type == FileType.HARDLINK:
        return  # a hardlink shares its inode with the name that carried the data
    if fd >= 0:
        _apply(
            a,
            fd,
            policy,
            acl_access=acl_access,
            acl_default=acl_default,
            xattrs=xattrs,
            warn=warn,
            owned=owned,
            mode_set=mode_set,
        )
    elif a.type == FileType.SYMLINK:
        _apply_symlink(a, dir_fd, name, policy, xattrs=xattrs, warn=warn, owned=owned)
    else:
        node = os.open(name, O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            _apply(
                a,
                f"{PROC_FD}/{node}",
                policy,
                acl_access=acl_access,
                acl_default=acl_default,
                xattrs=xattrs,
                warn=warn,
                owned=owned,
            )
        finally:
            os.close(node)


def _apply(
    a: FileAttributes,
    target: int | str,
    policy: Policy,
    *,
    acl_access: bytes | None,
    acl_default: bytes | None,
    xattrs: Sequence[tuple[bytes, bytes]],
    warn: Callable[[str], None],
    owned: bool,
    mode_set: bool = False,
) -> None:
    if not owned and (policy.privileged or a.uid == policy.euid):
        try:
            os.chown(target, a.uid, a.gid)
        except OSError as exc:
            warn(f"{printable(a.path)}: cannot set owner {a.uid}:{a.gid}: {exc.strerror}")
    mode = safe_mode(a, policy)
    if mode != stat.S_IMODE(a.mode):
        warn(
            f"{printable(a.path)}: setuid/setgid bits not restored (mode {stat.S_IMODE(a.mode):o} "
            f"restored as {mode:o})"
        )
    if not mode_set:
        os.chmod(target, mode)
    for acl_name, acl in ((ACL_ACCESS, acl_access), (ACL_DEFAULT, acl_default)):
        if acl is not None:
            try:
                os.setxattr(target, acl_name, acl)
            except OSError as exc:
                warn(f"{printable(a.path)}: cannot restore {acl_name}: {exc.strerror}")
    for xname, value in _allowed(a, xattrs, policy, warn):
        try:
            os.setxattr(target, xname, value)
        except OSError as exc:
            warn(
                f"{printable(a.path)}: cannot restore xattr {xname.decode(errors='replace')}: {exc.strerror}"
            )
    os.utime(target, ns=(a.atime_ns, a.mtime_ns))


def _apply_symlink(
    a: FileAttributes,
    dir_fd: int,
    name: bytes,
    policy: Policy,
    *,
    xattrs: Sequence[tuple[bytes, bytes]],
    warn: Callable[[str], None],
    owned: bool,
) -> None:
    if not owned and (policy.privileged or a.uid == policy.euid):
        try:
            os.chown(name, a.uid, a.gid, dir_fd=dir_fd, follow_symlinks=False)
        except OSError as exc:
            warn(f"{printable(a.path)}: cannot set owner {a.uid}:{a.gid}: {exc.strerror}")
    # lsetxattr has no *at form: the parent is reached through its descriptor's /proc link.
    link = os.fsencode(f"{PROC_FD}/{dir_fd}/") + name
    for xname, value in _allowed(a, xattrs, policy, warn):
        try:
            os.setxattr(link, xname, value, follow_symlinks=False)
        except OSError as exc:
            warn(
                f"{printable(a.path)}: cannot restore xattr {xname.decode(errors='replace')}: {exc.strerror}"
            )
    os.utime(name, ns=(a.atime_ns, a.mtime_ns), dir_fd=dir_fd, follow_symlinks=False)


def _allowed(
    a: FileAttributes,
    xattrs: Sequence[tuple[bytes, bytes]],
    policy: Policy,
    warn: Callable[[str], None],
) -> Sequence[tuple[bytes, bytes]]:
    if not policy.strip or not xattrs:
        return xattrs
    kept = [(n, v) for n, v in xattrs if not n.startswith(PRIVILEGED_XATTRS)]
    if len(kept) != len(xattrs):
        dropped = ", ".join(
            n.decode(errors="replace") for n, _v in xattrs if n.startswith(PRIVILEGED_XATTRS)
        )
        warn(f"{printable(a.path)}: privileged xattrs not restored: {dropped}")
    return kept
