"""A hostile source tree, and a comparison of two trees by content and by every restorable attribute."""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

GIB = 1024**3
SPARSE_NAME = b"sparse-1GiB.img"
ACL_ACCESS = "system.posix_acl_access"
ACL_DEFAULT = "system.posix_acl_default"


def posix_acl(entries: list[tuple[int, int, int]]) -> bytes:
    """The raw xattr form of a POSIX ACL: version 2, then (tag, perm, id) entries."""
    return struct.pack("<I", 2) + b"".join(
        struct.pack("<HHI", tag, perm, ident) for tag, perm, ident in entries
    )


USER_OBJ, USER, GROUP_OBJ, MASK, OTHER = 0x01, 0x02, 0x04, 0x10, 0x20
UNDEFINED = 0xFFFFFFFF
SAMPLE_ACL = posix_acl(
    [
        (USER_OBJ, 6, UNDEFINED),
        (USER, 4, 1234),
        (GROUP_OBJ, 4, UNDEFINED),
        (MASK, 4, UNDEFINED),
        (OTHER, 0, UNDEFINED),
    ]
)
SAMPLE_DEFAULT_ACL = posix_acl(
    [
        (USER_OBJ, 7, UNDEFINED),
        (USER, 5, 1234),
        (GROUP_OBJ, 5, UNDEFINED),
        (MASK, 5, UNDEFINED),
        (OTHER, 5, UNDEFINED),
    ]
)


def _b(path: Path | bytes) -> bytes:
    return os.fsencode(path)


def make_hostile_tree(root: Path, sparse_size: int = GIB) -> dict[str, bool]:
    """Build the tree; returns which optional features the filesystem/privileges allowed."""
    r = _b(root)
    j = os.path.join
    os.makedirs(r, exist_ok=True)
    features = {"xattrs": False, "acls": False, "devices": False}

    def write(name: bytes, data: bytes, mode: int = 0o644) -> bytes:
        path = j(r, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        return path

    write(b"plain.txt", b"hello\n")
    write(b"name with spaces.txt", b"spaces\n")
    write(b"new\nline.txt", b"newline in the name\n")
    write(b"latin1-\xe9\xff\xfe.bin", bytes(range(256)) * 4)
    write(b"dir one/nested/deeper/file.dat", os.urandom(300_000))
    write(b"compressible.log", b"the same line over and over again\n" * 100_000)
    write(b"empty-file", b"")
    write(b"odd modes/no-perms", b"x", 0o000)
    write(b"odd modes/setuid", b"#!/bin/sh\n", 0o4755)
    write(b"odd modes/group-only", b"g", 0o070)
    os.makedirs(j(r, b"odd modes/sticky"), exist_ok=True)
    os.chmod(j(r, b"odd modes/sticky"), 0o1777)
    os.makedirs(j(r, b"empty dir"), exist_ok=True)
    os.makedirs(j(r, b"empty dir 2/inner empty"), exist_ok=True)
    # hardlinks: a group of three, and a pair whose first-seen name sorts first
    first = write(b"links/a-first", b"shared data\n" * 1000)
    os.link(first, j(r, b"links/b-second"))
    os.link(first, j(r, b"links/c-third"))
    pair = write(b"links2/aa", b"pair data")
    os.link(pair, j(r, b"links2/zz"))
    # symlinks
    os.symlink(b"../plain.txt", j(r, b"links/relative-link"))
    os.symlink(b"/etc/passwd", j(r, b"links/absolute-link"))
    os.symlink(b"does/not/exist", j(r, b"links/dangling-link"))
    os.symlink(b"/", j(r, b"links/root-link"))
    # a fifo
    os.mkfifo(j(r, b"a fifo"), 0o640)
    # a big sparse file with a little data at both ends and in the middle
    with open(j(r, SPARSE_NAME), "wb") as f:
        f.write(b"head" * 1024)
        f.seek(sparse_size // 2)
        f.write(b"middle" * 1000)
        f.truncate(sparse_size)
    # nanosecond mtimes everywhere that matters
    for n, name in enumerate(
        (b"plain.txt", b"compressible.log", b"links/a-first", b"dir one/nested")
    ):
        os.utime(j(r, name), ns=(1_600_000_000_123_456_789 + n, 1_700_000_000_987_654_321 + n))
    # xattrs and ACLs, where the filesystem allows
    try:
        os.setxattr(j(r, b"plain.txt"), "user.comment", b"a note")
        os.setxattr(j(r, b"dir one"), "user.binary", b"\x00\xff\x01")
        features["xattrs"] = True
    except OSError:
        pass
    try:
        os.setxattr(j(r, b"name with spaces.txt"), ACL_ACCESS, SAMPLE_ACL)
        os.setxattr(j(r, b"dir one"), ACL_DEFAULT, SAMPLE_DEFAULT_ACL)
        features["acls"] = True
    except OSError:
        pass
    if os.geteuid() == 0:
        try:
            os.mknod(j(r, b"char-device"), 0o600 | stat.S_IFCHR, os.makedev(1, 3))
            features["devices"] = True
        except OSError:
            pass
    os.utime(j(r, b"odd modes"), ns=(1_500_000_000_000_000_001, 1_500_000_000_000_000_001))
    return features


def _entries(root: bytes) -> dict[bytes, os.stat_result]:
    out: dict[bytes, os.stat_result] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, root)] = os.lstat(full)
    return out


def _xattrs(path: bytes) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    return {n: os.getxattr(path, n, follow_symlinks=False) for n in names}


def _same_content(a: bytes, b: bytes) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            ca, cb = fa.read(1 << 20), fb.read(1 << 20)
            if ca != cb:
                return False
            if not ca:
                return True


def compare_trees(source: Path, restored: Path, *, check_atime: bool = False) -> list[str]:
    """Every difference between two trees; empty when the restore is exact.

    Compared: the set of names, type, permission bits, owner, size, mtime (ns), content, symlink
    target, device numbers, xattrs and ACLs, hardlink grouping, and for the sparse file that the
    restored copy allocates no more blocks than the source (plus one block of slack per extent).
    ctime cannot be set by any restore and is not compared.
    """
    a, b = _b(source), _b(restored)
    ea, eb = _entries(a), _entries(b)
    problems: list[str] = []
    for name in sorted(set(ea) ^ set(eb)):
        problems.append(f"{name!r}: only in {'source' if name in ea else 'restore'}")
    groups_a: dict[tuple[int, int], set[bytes]] = {}
    groups_b: dict[tuple[int, int], set[bytes]] = {}
    for name in sorted(set(ea) & set(eb)):
        sa, sb = ea[name], eb[name]
        pa, pb = os.path.join(a, name), os.path.join(b, name)
        fields = ["st_mode", "st_uid", "st_gid", "st_mtime_ns", "st_nlink", "st_rdev"]
        if not stat.S_ISDIR(sa.st_mode):
            fields.append("st_size")
        if check_atime:
            fields.append("st_atime_ns")
        for f in fields:
            if getattr(sa, f) != getattr(sb, f):
                problems.append(f"{name!r}: {f} {getattr(sa, f)!r} != {getattr(sb, f)!r}")
        if stat.S_ISLNK(sa.st_mode) and os.readlink(pa) != os.readlink(pb):
            problems.append(f"{name!r}: symlink target differs")
        if stat.S_ISREG(sa.st_mode) and stat.S_ISREG(sb.st_mode):
            if sa.st_size == sb.st_size and not _same_content(pa, pb):
                problems.append(f"{name!r}: content differs")
            if sa.st_nlink > 1:
                groups_a.setdefault((sa.st_dev, sa.st_ino), set()).add(name)
                groups_b.setdefault((sb.st_dev, sb.st_ino), set()).add(name)
            if name == SPARSE_NAME and sb.st_blocks > sa.st_blocks + 64:
                problems.append(
                    f"{name!r}: restored copy is not sparse ({sb.st_blocks} blocks vs {sa.st_blocks})"
                )
        if _xattrs(pa) != _xattrs(pb):
            problems.append(f"{name!r}: xattrs/ACLs differ: {_xattrs(pa)!r} != {_xattrs(pb)!r}")
    if sorted(map(sorted, groups_a.values())) != sorted(map(sorted, groups_b.values())):
        problems.append(
            f"hardlink groups differ: {sorted(map(sorted, groups_a.values()))} != {sorted(map(sorted, groups_b.values()))}"
        )
    return problems
