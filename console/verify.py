"""Compare a restored tree with its source: content, type, mode, owner, mtime, links, xattrs."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Comparison:
    files: int
    bytes: int
    differences: tuple[str, ...]

    @property
    def identical(self) -> bool:
        return not self.differences


def _digest(path: bytes) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _xattrs(path: bytes) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for name in names:
        try:
            out[os.fsencode(name)] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return out


def compare(source: Path, restored: Path, limit: int = 50) -> Comparison:
    """Walk the source; every entry must exist in the restored tree with equal metadata."""
    src_root = os.fsencode(source)
    dst_root = os.fsencode(restored)
    differences: list[str] = []
    files = 0
    total = 0
    inodes: dict[tuple[int, int], bytes] = {}
    restored_inodes: dict[bytes, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(src_root):
        rel_dir = os.path.relpath(dirpath, src_root)
        for name in [*dirnames, *filenames]:
            rel = os.path.normpath(os.path.join(rel_dir, name))
            a = os.path.join(src_root, rel)
            b = os.path.join(dst_root, rel)
            shown = os.fsdecode(rel)
            try:
                sa = os.lstat(a)
            except FileNotFoundError:
                continue
            try:
                sb = os.lstat(b)
            except FileNotFoundError:
                differences.append(f"{shown}: missing in the restore")
                continue
            files += 1
            if stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode):
                differences.append(f"{shown}: type differs")
                continue
            if stat.S_IMODE(sa.st_mode) != stat.S_IMODE(sb.st_mode) and not stat.S_ISLNK(
                sa.st_mode
            ):
                differences.append(f"{shown}: mode {oct(sa.st_mode)} != {oct(sb.st_mode)}")
            if (sa.st_uid, sa.st_gid) != (sb.st_uid, sb.st_gid):
                differences.append(f"{shown}: owner differs")
            if stat.S_ISLNK(sa.st_mode):
                if os.readlink(a) != os.readlink(b):
                    differences.append(f"{shown}: symlink target differs")
            elif sa.st_mtime_ns != sb.st_mtime_ns:
                differences.append(f"{shown}: mtime {sa.st_mtime_ns} != {sb.st_mtime_ns}")
            if stat.S_ISREG(sa.st_mode):
                total += sa.st_size
                if sa.st_size != sb.st_size or _digest(a) != _digest(b):
                    differences.append(f"{shown}: content differs")
                if sa.st_nlink > 1:
                    first = inodes.setdefault((sa.st_dev, sa.st_ino), rel)
                    restored_inodes[rel] = (sb.st_dev, sb.st_ino)
                    if first != rel and restored_inodes.get(first) != (sb.st_dev, sb.st_ino):
                        differences.append(
                            f"{shown}: hard link to {os.fsdecode(first)} not restored"
                        )
            if not stat.S_ISLNK(sa.st_mode) and _xattrs(a) != _xattrs(b):
                differences.append(f"{shown}: extended attributes differ")
            if len(differences) >= limit:
                return Comparison(files, total, tuple(differences))
    return Comparison(files, total, tuple(differences))
