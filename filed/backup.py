"""The backup reader: walk a FileSet and turn each file into records (attributes, data, digest).

Pure synchronous code: the File Daemon pulls record batches from `records()` in a worker thread.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from filed.accurate import AccurateEntry, AccurateList
from filed.codecs import compressor, new_hasher
from filed.matching import CompiledOptions, choose
from protocol import codec
from protocol.attributes import FileAttributes, FileType, encode_attributes, type_of_mode
from protocol.fileset import FileSetSpec, OptionsSpec
from protocol.records import OFFSET_SIZE, Record, Stream, pack_data, set_data_offset

CHUNK: Final = 256 * 1024
ACL_ACCESS: Final = "system.posix_acl_access"
ACL_DEFAULT: Final = "system.posix_acl_default"
_PRIVILEGED_XATTRS: Final = ("security.", "trusted.")

__all__ = ["AccurateEntry", "BackupReader", "BackupStats", "read_xattrs"]


@dataclass
class BackupStats:
    files: int = 0
    bytes: int = 0  # bytes read from files
    errors: int = 0
    warnings: list[str] = field(default_factory=list)
    deleted: int = 0


def _printable(path: bytes) -> str:
    return path.decode("utf-8", "backslashreplace").replace("\n", "\\n")


def read_xattrs(
    path: bytes | int, is_link: bool
) -> tuple[list[tuple[bytes, bytes]], bytes | None, bytes | None]:
    """(xattrs, ACL access, ACL default) of a file (a path, not followed if a symlink, or an open
    descriptor); missing support is simply nothing."""
    try:
        names = (
            os.listxattr(path)
            if isinstance(path, int)
            else os.listxattr(path, follow_symlinks=False)
        )
    except OSError:
        return [], None, None
    privileged = os.geteuid() == 0
    xattrs: list[tuple[bytes, bytes]] = []
    acl_access = acl_default = None
    for name in sorted(names):
        try:
            value = (
                os.getxattr(path, name)
                if isinstance(path, int)
                else os.getxattr(path, name, follow_symlinks=False)
            )
        except OSError:
            continue
        if name == ACL_ACCESS:
            acl_access = value
        elif name == ACL_DEFAULT:
            acl_default = value
        elif name.startswith("user.") or (privileged and name.startswith(_PRIVILEGED_XATTRS)):
            xattrs.append((name.encode(), value))
    if is_link:
        return xattrs, None, None
    return xattrs, acl_access, acl_default


DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_PROC_FD: Final = b"/proc/self/fd"


class _Place(NamedTuple):
    """Where an entry is: its name in an open directory (`dir_fd`), or a FileSet's top path
    (`dir_fd` None, `name` the path)."""

    dir_fd: int | None
    name: bytes

    def xattr_path(self, path: bytes) -> bytes:
        """A path for the xattr calls (they have no *at form) that resolves the entry's directory
        through the open descriptor; without /proc, or for a top, its full path."""
        if self.dir_fd is None or not _HAVE_PROC:
            return path
        return b"%s/%d/%s" % (_PROC_FD, self.dir_fd, self.name)


@dataclass(slots=True)
class _Dir:
    """An open directory of the walk, its sorted names and the next one to visit."""

    fd: int
    base: bytes  # its path with a trailing slash
    names: list[bytes] | None = None  # once listed
    next: int = 0


_HAVE_PROC: Final = os.path.isdir(_PROC_FD)


class BackupReader:
    """Walks the FileSet; `records()` yields every record of the job in file-index order."""

    def __init__(
        self,
        fileset: FileSetSpec,
        level: str = "Full",
        since_ns: int | None = None,
        accurate: AccurateList | Mapping[bytes, AccurateEntry] | None = None,
    ) -> None:
        self.fileset = fileset
        self.level = level
        self.since_ns = since_ns if level != "Full" else None
        self._owned: AccurateList | None = None  # built here from a mapping: closed here
        if level == "Full" or accurate is None:
            self.accurate: AccurateList | None = None
        elif isinstance(accurate, AccurateList):
            self.accurate = accurate
        else:
            self.accurate = self._owned = AccurateList.from_mapping(accurate)
        self.stats = BackupStats()
        self._index = 0
        self._links: dict[tuple[int, int], tuple[int, bytes]] = {}
        self._excluded = {p.rstrip(b"/") or b"/" for p in fileset.exclude}

    # -- walking ----------------------------------------------------------------------------

    def records(self) -> Iterator[Record]:
        try:
            for include in self.fileset.include:
                blocks = [CompiledOptions(o) for o in include.options]
                for top in include.files:
                    yield from self._walk(os.path.normpath(top) if top != b"/" else top, blocks)
            if self.accurate is not None:
                yield from self._deleted()
        finally:
            if self._owned is not None:
                self._owned.close()

    def _walk(self, top: bytes, blocks: list[CompiledOptions]) -> Iterator[Record]:
        """Depth first, names in byte order. Every directory below `top` is opened with
        O_NOFOLLOW|O_DIRECTORY relative to its parent's descriptor and everything in it is
        reached through that descriptor (stat, open, readlink, xattrs): a directory swapped for
        a symlink during the walk is not followed, and the walk never leaves the tree it
        started in. Record paths are the same as a walk by path gives."""
        try:
            st = os.lstat(top)
        except FileNotFoundError:
            self._warn(f"{_printable(top)}: listed in the FileSet but does not exist")
            return
        except OSError as exc:
            self._error(f"{_printable(top)}: cannot stat: {exc.strerror}")
            return
        top_dev = st.st_dev
        path, place = top, _Place(None, top)
        dirs: list[_Dir] = []
        try:
            while True:
                if path not in self._excluded:
                    is_dir = stat.S_ISDIR(st.st_mode)
                    options = choose(blocks, path, is_dir)
                    # Exclude = yes (None): neither the entry nor (for a directory) its contents
                    if options is not None:
                        opened = None
                        if is_dir and self._descend(path, st, options, top_dev):
                            opened = self._open_dir(path, st, place)
                        if opened is not None:
                            dirs.append(opened)  # closed below if the walk stops here
                        yield from self._file(path, st, options, place, opened)
                        if opened is not None and not self._list(opened):
                            dirs.pop()  # closed by _list
                found = self._next(dirs, blocks)
                if found is None:
                    return
                path, st, place = found
        finally:
            for left in dirs:  # the walk was stopped (cancel) or failed
                os.close(left.fd)

    def _next(
        self, dirs: list[_Dir], blocks: list[CompiledOptions]
    ) -> tuple[bytes, os.stat_result, _Place] | None:
        """The next entry of the walk, stat'ed through its directory's descriptor; None at the end.
        Directories done with are closed. In an Incremental or Differential a file that did not
        change is passed over here (marked seen in accurate mode), which is all `_file` would do
        with it: a no-change Incremental is this loop."""
        skipping = self.accurate is not None or self.since_ns is not None
        while dirs:
            here = dirs[-1]
            names = here.names
            assert names is not None
            if here.next >= len(names):
                os.close(dirs.pop().fd)
                continue
            name = names[here.next]
            here.next += 1
            path = here.base + name
            try:
                st = os.stat(name, dir_fd=here.fd, follow_symlinks=False)
                if skipping and not stat.S_ISDIR(st.st_mode) and path not in self._excluded:
                    options = choose(blocks, path, False)
                    if options is not None and not self._changed(path, st, options):
                        continue
                return path, st, _Place(here.fd, name)
            except FileNotFoundError:
                self._warn(f"{_printable(path)}: vanished during the backup")
            except OSError as exc:
                self._error(f"{_printable(path)}: cannot stat: {exc.strerror}")
        return None

    def _descend(self, path: bytes, st: os.stat_result, options: OptionsSpec, top_dev: int) -> bool:
        if not options.recurse:
            return False
        if options.one_fs and st.st_dev != top_dev:
            self._warn(
                f"{_printable(path)}: is a different filesystem; not descending (One FS = yes)"
            )
            return False
        return True

    def _open_dir(self, path: bytes, st: os.stat_result, place: _Place) -> _Dir | None:
        """Open a directory by its name in its parent, never through a symlink, and check it is
        the one just stat'ed."""
        try:
            fd = os.open(place.name, DIR_FLAGS, dir_fd=place.dir_fd)
        except FileNotFoundError:
            self._warn(f"{_printable(path)}: vanished during the backup")
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                self._warn(
                    f"{_printable(path)}: is no longer a directory (replaced during the backup);"
                    " not descending"
                )
            else:
                self._error(f"{_printable(path)}: cannot list directory: {exc.strerror}")
            return None
        try:
            now = os.fstat(fd)
        except OSError as exc:
            os.close(fd)
            self._error(f"{_printable(path)}: cannot stat: {exc.strerror}")
            return None
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            os.close(fd)
            self._warn(f"{_printable(path)}: was replaced during the backup; not descending")
            return None
        return _Dir(fd, path if path.endswith(b"/") else path + b"/")

    def _list(self, opened: _Dir) -> bool:
        """Read an open directory's names (sorted bytes); False (and closed) when it cannot be."""
        try:
            if _HAVE_PROC:  # bytes names straight from the kernel, through the descriptor
                names = os.listdir(b"%s/%d" % (_PROC_FD, opened.fd))
            else:
                names = [os.fsencode(name) for name in os.listdir(opened.fd)]
        except OSError as exc:
            os.close(opened.fd)
            self._error(
                f"{_printable(opened.base.rstrip(b'/') or b'/')}: cannot list directory:"
                f" {exc.strerror}"
            )
            return False
        names.sort()
        opened.names = names
        return True

    # -- one file ---------------------------------------------------------------------------

    def _changed(self, path: bytes, st: os.stat_result, options: OptionsSpec) -> bool:
        """Whether the file goes into the backup. Accurate mode: it is new or differs from the
        previous state, which the walk marks as seen (what is never seen was deleted)."""
        if self.accurate is not None:
            known = self.accurate.find(path)
            if known is None:
                return True
            index, mtime_ns, ctime_ns, size, mode = known
            self.accurate.mark_seen(index)
            return (
                mtime_ns != st.st_mtime_ns
                or ctime_ns != st.st_ctime_ns
                or size != st.st_size
                or mode != st.st_mode
            )
        if self.since_ns is None:
            return True
        if options.mtime_only:
            return st.st_mtime_ns >= self.since_ns
        return st.st_mtime_ns >= self.since_ns or st.st_ctime_ns >= self.since_ns

    def _file(
        self,
        path: bytes,
        st: os.stat_result,
        options: OptionsSpec,
        place: _Place,
        opened: _Dir | None,
    ) -> Iterator[Record]:
        """The records of one entry. Its xattrs come through a descriptor when there is one (the
        directory opened to descend, the regular file opened for its data), else by a path that
        resolves its directory through the walk's descriptor."""
        kind = type_of_mode(st.st_mode)
        changed = self._changed(path, st, options)  # first: it marks the path seen
        if kind != FileType.DIRECTORY and not changed:
            return
        if kind == FileType.SOCKET:
            return  # Bareos skips sockets: a listening process recreates its own
        self._index += 1
        index = self._index
        target = b""
        link_index = 0
        if kind == FileType.SYMLINK:
            try:
                target = os.fsencode(os.readlink(place.name, dir_fd=place.dir_fd))
            except OSError as exc:
                self._error(f"{_printable(path)}: cannot read symlink: {exc.strerror}")
                self._index -= 1
                return
        elif kind != FileType.DIRECTORY and st.st_nlink > 1 and options.hard_links:
            key = (st.st_dev, st.st_ino)
            first = self._links.get(key)
            if first is not None:
                kind, link_index, target = FileType.HARDLINK, first[0], first[1]
            else:
                self._links[key] = (index, path)
        has_data = kind == FileType.REGULAR and st.st_size > 0
        attrs = FileAttributes(
            path=path,
            type=kind,
            mode=st.st_mode,
            uid=st.st_uid,
            gid=st.st_gid,
            size=st.st_size,
            atime_ns=st.st_atime_ns,
            mtime_ns=st.st_mtime_ns,
            ctime_ns=st.st_ctime_ns,
            nlink=st.st_nlink,
            dev=st.st_dev,
            ino=st.st_ino,
            rdev=st.st_rdev,
            link_target=target,
            link_index=link_index,
            compression=(options.compression or "") if has_data else "",
            sparse=bool(options.sparse) and has_data,
            digest_algorithm=(options.signature or "") if has_data else "",
        )
        self.stats.files += 1
        yield Record(index, Stream.ATTRIBUTES, encode_attributes(attrs))
        fd = self._open_file(path, options, place) if has_data else -1
        try:
            if options.xattr_support or options.acl_support:
                source: int | bytes = place.xattr_path(path)
                if fd >= 0:
                    source = fd
                elif opened is not None:
                    source = opened.fd
                xattrs, acl_access, acl_default = read_xattrs(source, kind == FileType.SYMLINK)
                if xattrs and options.xattr_support:
                    yield Record(index, Stream.XATTRS, codec.pack(xattrs))
                if options.acl_support:
                    if acl_access is not None:
                        yield Record(index, Stream.ACL_ACCESS, acl_access)
                    if acl_default is not None:
                        yield Record(index, Stream.ACL_DEFAULT, acl_default)
            if fd >= 0:
                yield from self._data(index, path, st, attrs, options, fd=fd)
        finally:
            if fd >= 0:
                os.close(fd)

    def _open_file(self, path: bytes, options: OptionsSpec, place: _Place) -> int:
        """A regular file opened for reading by its name in its directory (O_NOFOLLOW), or -1
        with the reason counted."""
        flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        if options.no_atime:
            try:
                return os.open(place.name, flags | getattr(os, "O_NOATIME", 0), dir_fd=place.dir_fd)
            except OSError:
                pass
        try:
            return os.open(place.name, flags, dir_fd=place.dir_fd)
        except FileNotFoundError:
            self._warn(f"{_printable(path)}: vanished during the backup")
        except OSError as exc:
            self._error(f"{_printable(path)}: cannot open: {exc.strerror}")
        return -1

    def _data(
        self,
        index: int,
        path: bytes,
        st: os.stat_result,
        attrs: FileAttributes,
        options: OptionsSpec,
        *,
        fd: int,
    ) -> Iterator[Record]:
        """The data (and digest) records of a regular file opened as `fd` (closed by the caller)."""
        hasher = new_hasher(attrs.digest_algorithm) if attrs.digest_algorithm else None
        compress = (
            compressor(attrs.compression, options.compression_level) if attrs.compression else None
        )
        try:
            for start, length in self._extents(fd, st.st_size, attrs.sparse):
                os.lseek(fd, start, os.SEEK_SET)
                offset, end = start, start + length
                while offset < end:
                    if compress is None:
                        # Read in place behind the payload's offset field: no byte is copied in Python.
                        payload = bytearray(OFFSET_SIZE + min(CHUNK, end - offset))
                        view = memoryview(payload)
                        got = os.readv(fd, [view[OFFSET_SIZE:]])
                        if not got:
                            break
                        self.stats.bytes += got
                        if hasher is not None:
                            hasher.update(view[OFFSET_SIZE : OFFSET_SIZE + got])
                        set_data_offset(payload, offset)
                        yield Record(index, Stream.DATA, view[: OFFSET_SIZE + got])
                        offset += got
                        continue
                    chunk = os.read(fd, min(CHUNK, end - offset))
                    if not chunk:
                        break
                    self.stats.bytes += len(chunk)
                    if hasher is not None:
                        hasher.update(chunk)
                    packed = compress(chunk)
                    if len(packed) < len(chunk):
                        yield Record(index, Stream.COMPRESSED_DATA, pack_data(offset, packed))
                    else:
                        yield Record(index, Stream.DATA, pack_data(offset, chunk))
                    offset += len(chunk)
            after = os.fstat(fd)
        except OSError as exc:
            self._error(f"{_printable(path)}: read error: {exc.strerror}")
            return
        if (after.st_dev, after.st_ino) != (st.st_dev, st.st_ino):
            # Another file was renamed over it between stat and open (never one reached through
            # a symlink: O_NOFOLLOW, by name in its directory's descriptor).
            self._warn(
                f"{_printable(path)}: was replaced during the backup; the copy is the new file's"
            )
        elif (after.st_mtime_ns, after.st_size) != (st.st_mtime_ns, st.st_size):
            self._warn(
                f"{_printable(path)}: file changed during the backup; the copy may be inconsistent"
            )
        if hasher is not None:
            yield Record(
                index, Stream.DIGEST, codec.pack((attrs.digest_algorithm, hasher.digest()))
            )

    @staticmethod
    def _extents(fd: int, size: int, sparse: bool) -> Iterator[tuple[int, int]]:
        """(offset, length) of the data to read: the whole file, or only its data extents."""
        if not sparse:
            yield 0, size
            return
        offset = 0
        while offset < size:
            try:
                start = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    return  # only a hole remains
                yield offset, size - offset  # SEEK_DATA unsupported: read the rest plainly
                return
            end = os.lseek(fd, start, os.SEEK_HOLE)
            yield start, end - start
            offset = end

    def _deleted(self) -> Iterator[Record]:
        """Accurate mode: every path of the previous backup that was not seen now is gone."""
        assert self.accurate is not None
        for path, before in self.accurate.unseen():
            attrs = FileAttributes(
                path=path,
                type=FileType.DELETED,
                mode=before.mode,
                uid=0,
                gid=0,
                size=0,
                atime_ns=0,
                mtime_ns=before.mtime_ns,
                ctime_ns=before.ctime_ns,
            )
            self.stats.deleted += 1
            yield Record(0, Stream.DELETED, encode_attributes(attrs))

    def _warn(self, text: str) -> None:
        self.stats.warnings.append(text)

    def _error(self, text: str) -> None:
        self.stats.errors += 1
        self.stats.warnings.append(text)
