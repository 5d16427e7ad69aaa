"""The restore writer: records in, files out, with their attributes, exactly and safely.

Targets are mapped and their parents checked by `filed.restore_paths`: a path that would land
outside `where` makes the file refused and logged, never written.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from filed.backup import ACL_ACCESS, ACL_DEFAULT
from filed.codecs import Hasher, decompressor, new_hasher
from filed.restore_paths import PathMap, UnsafePath, parse_regex_where, printable
from protocol import codec
from protocol.attributes import FileAttributes, FileType, decode_attributes
from protocol.errors import DecodeError
from protocol.records import Record, Stream, unpack_data

REPLACE_POLICIES: Final = ("always", "ifnewer", "ifolder", "never")
HIDDEN_PREFIX: Final = b".strongroom-restore-"


@dataclass
class RestoreStats:
    files: int = 0
    bytes: int = 0
    errors: int = 0
    skipped: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Current:
    attrs: FileAttributes
    index: int
    target: bytes
    fd: int = -1
    hasher: Hasher | None = None
    decompress: Any = None
    skip: bool = False
    hidden: bool = False
    acl_access: bytes | None = None
    acl_default: bytes | None = None
    xattrs: list[tuple[bytes, bytes]] = field(default_factory=list)


class RestoreWriter:
    def __init__(self, where: Path, *, replace: str = "always", strip_prefix: bytes | None = None,
                 add_prefix: bytes | None = None, add_suffix: bytes | None = None,
                 regex_where: str | None = None, hidden_indexes: tuple[tuple[int, int], ...] = (),
                 log: Any = None) -> None:
        if replace.lower() not in REPLACE_POLICIES:
            raise ValueError(f"unknown replace policy {replace!r} (use {', '.join(REPLACE_POLICIES)})")
        self.where = os.fsencode(os.path.abspath(where))
        self.replace = replace.lower()
        self.paths = PathMap(self.where, strip_prefix, add_prefix, add_suffix,
                             tuple(parse_regex_where(regex_where)) if regex_where else ())
        self.hidden = set(hidden_indexes)
        self.log = log
        self.stats = RestoreStats()
        self._current: _Current | None = None
        self._dirs: list[tuple[bytes, FileAttributes, _Current]] = []
        self._restored: dict[tuple[int, int], bytes] = {}
        self._job = 0
        self._privileged = os.geteuid() == 0
        os.makedirs(self.where, exist_ok=True)

    def target_of(self, path: bytes) -> bytes:
        return self.paths.target_of(path)

    # -- records ----------------------------------------------------------------------------

    def feed(self, record: Record) -> None:
        if record.stream == Stream.JOB_START:
            self._finish_current()
            self._job = int.from_bytes(record.payload, "big")
            return
        if record.stream == Stream.ATTRIBUTES:
            self._finish_current()
            self._start(record)
            return
        cur = self._current
        if cur is None or record.file_index != cur.index:
            self._error(f"record for file index {record.file_index} arrived without its attributes; dropped")
            return
        if cur.skip:
            return
        try:
            if record.stream in (Stream.DATA, Stream.COMPRESSED_DATA):
                self._data(cur, record)
            elif record.stream == Stream.DIGEST:
                algorithm, digest = codec.unpack(record.payload)
                if cur.hasher is not None and cur.hasher.digest() != digest:
                    self._error(f"{printable(cur.attrs.path)}: {algorithm} digest mismatch: the restored data differs from what was backed up")
            elif record.stream == Stream.XATTRS:
                cur.xattrs = [(bytes(n), bytes(v)) for n, v in codec.unpack(record.payload)]
            elif record.stream == Stream.ACL_ACCESS:
                cur.acl_access = bytes(record.payload)
            elif record.stream == Stream.ACL_DEFAULT:
                cur.acl_default = bytes(record.payload)
        except (OSError, DecodeError, ValueError) as exc:
            self._error(f"{printable(cur.attrs.path)}: {exc}")
            self._abandon(cur)

    def _start(self, record: Record) -> None:
        try:
            attrs = decode_attributes(record.payload)
        except DecodeError as exc:
            self._error(f"file index {record.file_index}: {exc}")
            self._current = None
            return
        hidden = (self._job, record.file_index) in self.hidden
        try:
            target = (os.path.join(self.where, HIDDEN_PREFIX + f"{self._job}-{record.file_index}".encode()) if hidden
                      else self.target_of(attrs.path))
        except UnsafePath as exc:
            self._refuse(attrs.path, str(exc))
            self._current = _Current(attrs, record.file_index, b"", skip=True)
            return
        cur = _Current(attrs, record.file_index, target, hidden=hidden)
        self._current = cur
        try:
            self.paths.check_parents(target)
            if not hidden and not self._may_replace(cur):
                cur.skip = True
                self.stats.skipped += 1
                return
            self._create(cur)
        except UnsafePath as exc:
            self._refuse(attrs.path, str(exc))
            cur.skip = True
        except OSError as exc:
            self._error(f"{printable(attrs.path)}: cannot create {printable(target)}: {exc.strerror}")
            cur.skip = True

    def _may_replace(self, cur: _Current) -> bool:
        try:
            existing = os.lstat(cur.target)
        except FileNotFoundError:
            return True
        if cur.attrs.type == FileType.DIRECTORY and stat.S_ISDIR(existing.st_mode):
            return True  # directories are merged, their attributes set at the end
        if self.replace == "never":
            return False
        if self.replace == "ifnewer" and cur.attrs.mtime_ns <= existing.st_mtime_ns:
            return False
        if self.replace == "ifolder" and cur.attrs.mtime_ns >= existing.st_mtime_ns:
            return False
        if stat.S_ISDIR(existing.st_mode):
            raise OSError(21, f"a directory is in the way of {cur.attrs.type.name.lower()}")
        os.unlink(cur.target)
        return True

    def _create(self, cur: _Current) -> None:
        a, target = cur.attrs, cur.target
        kind = a.type
        if kind == FileType.DIRECTORY:
            with contextlib.suppress(FileExistsError):
                os.mkdir(target, 0o700)
            self._dirs.append((target, a, cur))
        elif kind == FileType.REGULAR:
            cur.fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            if a.digest_algorithm:
                cur.hasher = new_hasher(a.digest_algorithm)
            if a.compression:
                cur.decompress = decompressor(a.compression)
        elif kind == FileType.SYMLINK:
            os.symlink(a.link_target, target)
        elif kind == FileType.HARDLINK:
            source = self._restored.get((self._job, a.link_index))
            if source is None:
                raise OSError(2, f"hardlink target (file index {a.link_index}) was not restored")
            if os.path.basename(source).startswith(HIDDEN_PREFIX):
                os.rename(source, target)  # the first selected name takes the hidden carrier's data
                self._restored[(self._job, a.link_index)] = target
            else:
                os.link(source, target, follow_symlinks=False)
        elif kind == FileType.FIFO:
            os.mkfifo(target, 0o600)
        elif kind in (FileType.CHAR_DEVICE, FileType.BLOCK_DEVICE):
            os.mknod(target, a.mode, a.rdev)
        else:
            raise OSError(22, f"cannot restore a {kind.name.lower()}")
        self._restored[(self._job, cur.index)] = target

    def _data(self, cur: _Current, record: Record) -> None:
        if cur.fd < 0:
            return
        offset, chunk = unpack_data(record.payload)
        data: Any = chunk
        if record.stream == Stream.COMPRESSED_DATA:
            if cur.decompress is None:
                raise ValueError("compressed data for a file whose attributes name no compression")
            data = cur.decompress(chunk)
        if cur.hasher is not None:
            cur.hasher.update(data)
        written = os.pwrite(cur.fd, data, offset)
        while written < len(data):
            written += os.pwrite(cur.fd, memoryview(data)[written:], offset + written)
        self.stats.bytes += len(data)

    # -- finishing --------------------------------------------------------------------------

    def _finish_current(self) -> None:
        cur, self._current = self._current, None
        if cur is None or cur.skip:
            return
        a = cur.attrs
        try:
            if cur.fd >= 0:
                os.ftruncate(cur.fd, a.size)  # a sparse file's trailing hole, and its exact size
                os.close(cur.fd)
                cur.fd = -1
            if a.type != FileType.DIRECTORY:
                self._apply(cur.target, a, cur)
            if not cur.hidden:
                self.stats.files += 1
        except OSError as exc:
            self._error(f"{printable(a.path)}: cannot set attributes: {exc.strerror or exc}")

    def _apply(self, target: bytes, a: FileAttributes, cur: _Current) -> None:
        """Owner, mode, ACLs, xattrs and times, in the order that keeps each one."""
        is_link = a.type == FileType.SYMLINK
        if a.type == FileType.HARDLINK:
            return  # a hardlink shares its inode with the name that carried the data
        if self._privileged or a.uid == os.geteuid():
            try:
                os.lchown(target, a.uid, a.gid)
            except OSError as exc:
                self._warn(f"{printable(a.path)}: cannot set owner {a.uid}:{a.gid}: {exc.strerror}")
        if not is_link:
            os.chmod(target, stat.S_IMODE(a.mode))
            for acl_name, acl in ((ACL_ACCESS, cur.acl_access), (ACL_DEFAULT, cur.acl_default)):
                if acl is not None:
                    try:
                        os.setxattr(target, acl_name, acl)
                    except OSError as exc:
                        self._warn(f"{printable(a.path)}: cannot restore {acl_name}: {exc.strerror}")
        for name, value in cur.xattrs:
            try:
                os.setxattr(target, name, value, follow_symlinks=False)
            except OSError as exc:
                self._warn(f"{printable(a.path)}: cannot restore xattr {name.decode(errors='replace')}: {exc.strerror}")
        os.utime(target, ns=(a.atime_ns, a.mtime_ns), follow_symlinks=False)

    def finish(self) -> RestoreStats:
        """Close the last file, then set directory attributes deepest first, after their contents."""
        self._finish_current()
        for target, attrs, cur in sorted(self._dirs, key=lambda d: d[0].count(b"/"), reverse=True):
            try:
                self._apply(target, attrs, cur)
            except OSError as exc:
                self._error(f"{printable(attrs.path)}: cannot set directory attributes: {exc.strerror}")
        self._dirs.clear()
        for key, path in list(self._restored.items()):
            if os.path.basename(path).startswith(HIDDEN_PREFIX):
                with contextlib.suppress(OSError):
                    os.unlink(path)
                self._restored.pop(key)
        return self.stats

    def _abandon(self, cur: _Current) -> None:
        if cur.fd >= 0:
            os.close(cur.fd)
            cur.fd = -1
        cur.skip = True

    def _refuse(self, path: bytes, reason: str) -> None:
        self._error(f"{printable(path)}: refused: {reason}")
        if self.log is not None:
            self.log.warning("restore_path_refused", path=printable(path), reason=reason)

    def _warn(self, text: str) -> None:
        self.stats.warnings.append(text)

    def _error(self, text: str) -> None:
        self.stats.errors += 1
        self.stats.warnings.append(text)
