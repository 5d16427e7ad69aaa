"""The restore writer: records in, files out, with their attributes, exactly and safely.

Files are reached by descriptor only (`filed.restore_paths`, `filed.restore_files`): `where` is
opened from `/` without following symlinks and refused when others may write to it; every parent is
opened with `openat(…, O_NOFOLLOW)` (once per directory: the directory files are being restored
into stays open while its files arrive); files are created with O_EXCL and get their attributes
through their own descriptor. A path that would land outside `where` makes the
file refused and logged, never written. Restoring to a `where` other than `/` or to another client
strips privileged content unless the restore asks for it (`privileged_content`): setuid/setgid
bits, device nodes and security.*/trusted.* xattrs; each is a warning in the job log. A restore survives a bad
record (#11). A file whose attributes name an unknown codec or digest or an owner no system has,
whose xattr list is malformed, whose compressed data does not decompress (or would expand past
its limit, `restore_checks.MAX_CHUNK_SIZE`) or whose data fails its digest is reported (an error
naming the file and the problem) and not restored; the restore goes on with the next file.
A file whose name is free is created under that name (O_EXCL: nothing there is ever opened or
followed) and removed again if it fails; a file that would replace something is built under a
temporary name beside its target and renamed over the target only when it is complete. Either way
a failed file leaves nothing behind and never replaces a good file with a truncated one. Whatever goes wrong, `finish` and `abort` close descriptors,
remove temporary files and hidden carriers and set directory attributes; a writer simply dropped
still has its descriptors closed and files removed by a finalizer.

Job-level problems (an invalid `regexwhere`, an unknown replace policy, a `where` that cannot be
created) do not raise: the writer is `rejected`, writes nothing, drops every record and reports
the reason as its one error, so the File Daemon still ends the job with a JobEnd saying why.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import stat
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from filed.codecs import Hasher
from filed.direct_data import DirectData
from filed.restore_checks import (
    FILE_ERRORS,
    MAX_CHUNK_SIZE,
    Decompress,
    FileFailed,
    decompress_chunk,
    open_codecs,
    parse_digest,
    parse_xattrs,
    reason,
)
from filed.restore_files import (
    Leftovers,
    Policy,
    apply_attributes,
    create_node,
    has_default_acl,
    install,
    safe_mode,
)
from filed.restore_paths import (
    DirWalker,
    PathMap,
    UnsafePath,
    join,
    open_component,
    open_where,
    parse_regex_where,
    printable,
)
from filed.thread_umask import exact_modes
from protocol.attributes import FileAttributes, FileType, decode_attributes
from protocol.errors import DecodeError
from protocol.records import Record, Stream, unpack_data
from protocol.restore_policy import REPLACE_POLICIES

HIDDEN_PREFIX: Final = (
    b".strongroom-restore-"  # a hardlink's data carrier whose own name is not selected
)
TEMP_PREFIX: Final = (
    b".strongroom-part-"  # a file replacing another, renamed over its target when complete
)
_ATTRIBUTES: Final = int(Stream.ATTRIBUTES)
_DATA: Final = int(Stream.DATA)
_COMPRESSED_DATA: Final = int(Stream.COMPRESSED_DATA)
_DIGEST: Final = int(Stream.DIGEST)
_XATTRS: Final = int(Stream.XATTRS)
_ACL_ACCESS: Final = int(Stream.ACL_ACCESS)
_ACL_DEFAULT: Final = int(Stream.ACL_DEFAULT)
_JOB_START: Final = int(Stream.JOB_START)
_DATA_STREAMS: Final = frozenset({_DATA, _COMPRESSED_DATA})
_STARTS: Final = frozenset({_ATTRIBUTES, _JOB_START})  # records that end the current file
# The notes of each kind (errors, warnings) a restore keeps the text of; the rest are only counted,
# so a restore with thousands of bad files neither grows without bound nor floods the job log.
MAX_NOTES: Final = 100


@dataclass
class RestoreStats:
    """What a restore did. `files` counts the files restored plus those the replace policy kept as
    they were (`skipped`), as Bareos counts JobFiles: both are what the Director asked for.

    Notes for the job log come in two kinds, each counted in full with the first `keep` texts kept:
    errors (`errors`, `failed`: a file not restored, a job-level rejection) and warnings
    (`warning_count`, `warnings`: what was restored without all of its attributes)."""

    files: int = 0
    bytes: int = 0
    errors: int = 0
    skipped: int = 0
    warning_count: int = 0
    warnings: list[str] = field(default_factory=list)  # the first `keep` warnings
    failed: list[str] = field(default_factory=list)  # the first `keep` errors
    keep: int = MAX_NOTES

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.failed) < self.keep:
            self.failed.append(text)

    def warn(self, text: str) -> None:
        self.warning_count += 1
        if len(self.warnings) < self.keep:
            self.warnings.append(text)


@dataclass(slots=True)
class _Current:
    attrs: FileAttributes
    index: int
    parts: tuple[bytes, ...]  # the target, as components below `where`
    where: bytes
    hidden: bool = False
    # The name (in the parent directory) this restore created for the file and removes if the file
    # fails: its own name when that was free, else a temporary one renamed over it when complete.
    made: bytes | None = None
    temp: bool = False  # `made` is a temporary name
    dir_fd: int = -1  # the parent directory (the writer's, not closed with the file)
    fd: int = -1
    end: int = 0  # the end of the data written so far
    hasher: Hasher | None = None
    decompress: Decompress | None = None
    acl_access: bytes | None = None
    acl_default: bytes | None = None
    xattrs: Sequence[tuple[bytes, bytes]] = ()
    mode_set: bool = False  # created with its final mode (`RestoreWriter._make`): no chmod

    @property
    def target(self) -> bytes:
        """The target as a path, for messages only."""
        return join(self.where, self.parts)


class RestoreWriter:
    def __init__(
        self,
        where: Path,
        *,
        replace: str = "always",
        strip_prefix: bytes | None = None,
        add_prefix: bytes | None = None,
        add_suffix: bytes | None = None,
        regex_where: str | None = None,
        hidden_indexes: tuple[tuple[int, int], ...] = (),
        log: Any = None,
        max_notes: int = MAX_NOTES,
        max_chunk_size: int = MAX_CHUNK_SIZE,
        privileged_content: bool = False,
        same_client: bool = True,
        direct_io: bool = True,
    ) -> None:
        self.where = os.path.normpath(os.fsencode(where))
        self.replace = replace.lower()
        self.hidden = set(hidden_indexes)
        self.log = log
        self.stats = RestoreStats(keep=max_notes)
        self.max_chunk_size = max_chunk_size
        # One call at a time: the File Daemon feeds from a worker thread and may abort from another
        # while a feed is still running (a canceled job); the abort waits for that feed to return.
        self._lock = threading.Lock()
        self.rejected: str | None = None
        self.paths = PathMap(self.where, strip_prefix, add_prefix, add_suffix)
        self._current: _Current | None = None
        self._dropping: int | None = None  # file index whose remaining records are dropped
        self._dirs: list[tuple[tuple[bytes, ...], FileAttributes, _Current]] = []
        # (JobId, FileIndex) -> where a hard link's first name went (nlink > 1) or a carrier hides
        self._restored: dict[tuple[int, int], tuple[bytes, ...]] = {}
        self._job = 0
        self.policy = Policy(
            privileged=os.geteuid() == 0,
            strip=not privileged_content and (self.where != b"/" or not same_client),
        )
        self._walker: DirWalker | None = None
        self._cwd: tuple[bytes, ...] = ()  # the directory files are being restored into
        self._cwd_fd = -1  # … and its descriptor (see `_parent`)
        self._cwd_gid = -1  # … and the group a file made there gets
        self._egid = os.getegid()  # … which is this process's unless the directory is setgid
        self._cwd_plain = False  # … and whether it has no default ACL
        self._token = secrets.token_hex(4).encode()
        self._serial = itertools.count()
        self._leftovers = Leftovers()
        self._direct = DirectData(direct_io)  # large files' data: O_DIRECT through a stage
        self._release = weakref.finalize(self, self._leftovers.release)
        self._closed = False
        self._exact = False  # this feed's thread creates files with the mode given (`_make`)
        try:
            if self.replace not in REPLACE_POLICIES:
                raise ValueError(
                    f"unknown replace policy {replace!r} (use {', '.join(REPLACE_POLICIES)})"
                )
            if regex_where:
                self.paths = PathMap(
                    self.where,
                    strip_prefix,
                    add_prefix,
                    add_suffix,
                    tuple(parse_regex_where(regex_where)),
                )
            self._walker = DirWalker(open_where(self.where), self.where)
            self._leftovers.walker = self._walker
        except UnsafePath as exc:
            self._reject(f"cannot create or use {printable(self.where)}: {exc}")
        except ValueError as exc:
            self._reject(str(exc))
        except OSError as exc:
            self._reject(f"cannot create {printable(self.where)}: {exc.strerror or exc}")

    def target_of(self, path: bytes) -> bytes:
        """Where a backed-up path would land, as a path (for messages and tests)."""
        return self.paths.target_of(path)

    # -- records ----------------------------------------------------------------------------

    def feed(self, record: Record) -> None:
        """Take one record; never raises: whatever is wrong with it costs at most its file."""
        with self._feeding():
            if self.rejected is not None or self._closed:
                return
            try:
                self._feed(record)
            except Exception as exc:  # a per-file boundary: an unforeseen failure loses one file, never the restore
                self._unforeseen(exc, record.file_index)

    def feed_batch(self, records: Iterable[Record]) -> None:
        """Take a batch of records (one received frame) under one lock; never raises."""
        with self._feeding():
            for record in records:
                if self.rejected is not None or self._closed:
                    return
                try:
                    self._feed(record)
                except Exception as exc:  # a per-file boundary, as in `feed`
                    self._unforeseen(exc, record.file_index)

    @contextlib.contextmanager
    def _feeding(self) -> Iterator[None]:
        """The writer's lock, and umask 0 in this thread alone while records are fed, when the
        thread can have a umask of its own (`exact_modes`, `_make`)."""
        with self._lock, exact_modes() as exact:
            self._exact = exact
            try:
                yield
            finally:
                self._exact = False

    def _feed(self, record: Record) -> None:
        stream = record.stream
        cur = self._current
        if cur is not None and record.file_index == cur.index and stream not in _STARTS:
            try:
                if stream in _DATA_STREAMS:
                    self._data(cur, stream, record.payload)
                elif stream == _DIGEST:
                    algorithm, digest = parse_digest(record.payload)
                    if cur.hasher is not None and cur.hasher.digest() != digest:
                        raise FileFailed(
                            f"{algorithm} digest mismatch: the data read differs from what was backed up"
                        )
                elif stream == _XATTRS:
                    cur.xattrs = parse_xattrs(record.payload)
                    if cur.mode_set and any(
                        n.startswith(b"system.posix_acl") for n, _ in cur.xattrs
                    ):
                        self._unset_mode(cur)  # an ACL by another name
                elif stream == _ACL_ACCESS:
                    cur.acl_access = bytes(record.payload)
                    if cur.mode_set:
                        self._unset_mode(cur)
                elif stream == _ACL_DEFAULT:
                    cur.acl_default = bytes(record.payload)
            except FILE_ERRORS as exc:
                self._fail(cur, reason(exc))
            return
        if stream == _ATTRIBUTES:
            self._finish_current()
            self._start(record)
        elif stream == _JOB_START:
            self._job_start(record)
        elif record.file_index != self._dropping:
            self._dropping = record.file_index  # one report per file, not one per record
            self._error(
                f"record for file index {record.file_index} arrived without its attributes; dropped"
            )

    def _unset_mode(self, cur: _Current) -> None:
        """A file made with its final mode turns out to have an access ACL, set at the end: until
        then its mode bits would stand in for the ACL's mask, so it goes back to 0600 and gets
        its mode at the end. A backup sends ACLs and xattrs before the data (filed.backup), so
        no data has arrived yet."""
        os.fchmod(cur.fd, 0o600)
        cur.mode_set = False

    def _job_start(self, record: Record) -> None:
        self._finish_current()
        self._job = int.from_bytes(record.payload, "big")
        self._dropping = None

    def _start(self, record: Record) -> None:
        self._dropping = record.file_index  # until the file is set up
        try:
            attrs = decode_attributes(record.payload)
        except DecodeError as exc:
            self._error(f"file index {record.file_index}: {exc}; not restored")
            return
        hidden = bool(self.hidden) and (self._job, record.file_index) in self.hidden
        try:
            parts = (
                (HIDDEN_PREFIX + f"{self._job}-{record.file_index}".encode(),)
                if hidden
                else self.paths.parts_of(attrs.path)
            )
            if not parts and attrs.type != FileType.DIRECTORY:
                raise UnsafePath("it would replace the restore location itself")
        except UnsafePath as exc:
            self._refuse(attrs.path, str(exc))
            return
        cur = _Current(attrs, record.file_index, parts, self.where, hidden=hidden)
        if self.policy.strip and attrs.type in (FileType.CHAR_DEVICE, FileType.BLOCK_DEVICE):
            self._warn(
                f"{printable(attrs.path)}: device node not restored (privileged content: restore to "
                "the same client at where=/ or ask for privileged content)"
            )
            self.stats.skipped += (
                1  # handled as the policy says, as a file the replace policy keeps
            )
            self.stats.files += 1
            return
        try:
            cur.hasher, cur.decompress = open_codecs(attrs)
        except FileFailed as exc:
            self._fail(cur, str(exc))
            return
        try:
            cur.dir_fd = self._parent(parts[:-1])
            if not self._place(cur):
                self._discard(cur)
                self.stats.skipped += 1
                self.stats.files += 1
                return
        except UnsafePath as exc:
            self._refuse(attrs.path, str(exc))
            self._discard(cur)
            return
        except FILE_ERRORS as exc:
            self._fail(cur, f"cannot create {printable(cur.target)}: {reason(exc)}")
            return
        self._current = cur
        self._dropping = None

    def _parent(self, parts: tuple[bytes, ...]) -> int:
        """The directory `parts` below `where`, kept open while files keep arriving in it (a
        restore writes one directory at a time): one walk per directory, not per file."""
        if self._cwd_fd >= 0 and parts == self._cwd:
            return self._cwd_fd
        self._drop_cwd()
        assert self._walker is not None
        fd = self._walker.open_dir(parts)
        self._leftovers.fds.add(fd)
        try:
            st = os.fstat(fd)
            # A default ACL, not the umask, masks the mode a file is made with here (`_make`).
            plain = not has_default_acl(fd)
        except OSError:
            self._leftovers.fds.discard(fd)
            os.close(fd)
            raise
        # The group a new file gets here: the directory's when it is setgid. Otherwise this
        # process's, except on a file system mounted grpid (BSD groups): for a directory of
        # another group the group is not known (-1), and files made there are chowned.
        if st.st_mode & stat.S_ISGID or st.st_gid == self._egid:
            self._cwd_gid = st.st_gid
        else:
            self._cwd_gid = -1
        self._cwd, self._cwd_fd, self._cwd_plain = parts, fd, plain
        return fd

    def _drop_cwd(self) -> None:
        fd, self._cwd_fd = self._cwd_fd, -1
        if fd >= 0:
            self._leftovers.fds.discard(fd)
            os.close(fd)

    def _forget(self, parts: tuple[bytes, ...]) -> None:
        """The directory `parts` was removed: no descriptor on it or below it is used again."""
        assert self._walker is not None
        self._walker.forget(parts)
        if self._cwd[: len(parts)] == parts:
            self._drop_cwd()

    def _place(self, cur: _Current) -> bool:
        """Create the file under its own name when that is free; else ask the replace policy, and
        build it under a temporary name when the policy lets it replace what is there. False: the
        policy keeps what is there."""
        kind = cur.attrs.type
        if kind != FileType.HARDLINK and cur.parts:
            name = cur.parts[-1]
            try:
                if kind == FileType.DIRECTORY:
                    assert self._walker is not None
                    if self._walker.holds(cur.parts):
                        # Opened (made, mostly) for the files that came before its own record: a
                        # directory on a directory is merged, whatever the replace policy says.
                        return True
                    os.mkdir(name, 0o700, dir_fd=cur.dir_fd)
                    return True
                self._make(cur, name)
                return True
            except FileExistsError:
                pass
        if not cur.hidden and not self._may_replace(cur):
            return False
        self._create(cur)
        return True

    def _make(self, cur: _Current, name: bytes, temp: bool = False) -> None:
        """A new node `name` in the parent directory (FileExistsError if anything is there)."""
        final = self._final_mode(cur)
        cur.fd = create_node(cur.attrs, cur.dir_fd, name, 0o600 if final is None else final)
        cur.mode_set = final is not None
        if cur.fd >= 0:
            self._leftovers.fds.add(cur.fd)
        cur.made, cur.temp = name, temp  # only now: a name we did not create is never removed
        self._leftovers.paths.add((*cur.parts[:-1], name))

    def _final_mode(self, cur: _Current) -> int | None:
        """The mode a regular file can be made with at once, so that no chmod is needed at the
        end: when nothing masks it (this thread's umask is 0, `exact_modes`, and the directory
        has no default ACL), it has no setuid, setgid or sticky bit, and the file is made with
        the owner and group it ends with (no chown at the end: the mode's group and other bits
        never apply to another group, such as a setgid directory's, while its data arrives).
        None: made 0600, its owner and mode set at the end."""
        a = cur.attrs
        if not (self._exact and self._cwd_plain) or a.type != FileType.REGULAR:
            return None
        policy = self.policy
        as_made = a.uid == policy.euid and a.gid == self._cwd_gid
        if not as_made and (policy.privileged or a.uid == policy.euid):
            return None  # the end chowns it
        final = safe_mode(a, policy)
        return None if final & ~0o777 else final

    def _may_replace(self, cur: _Current) -> bool:
        """Whether the policy lets this file take the place of what is there (nothing is removed here)."""
        if not cur.parts:
            return True  # `where` itself: a directory, merged
        try:
            existing = os.stat(cur.parts[-1], dir_fd=cur.dir_fd, follow_symlinks=False)
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
        return True

    def _create(self, cur: _Current) -> None:
        """Make the file under a temporary name beside its target (a directory: in place)."""
        a, dir_fd = cur.attrs, cur.dir_fd
        kind = a.type
        if kind == FileType.DIRECTORY:
            if not cur.parts:
                return  # `where` itself
            name = cur.parts[-1]
            try:
                os.mkdir(name, 0o700, dir_fd=dir_fd)
            except FileExistsError:
                if stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                    return  # merged
                os.unlink(name, dir_fd=dir_fd)  # a file the policy lets the directory replace
                self._forget(cur.parts)
                os.mkdir(name, 0o700, dir_fd=dir_fd)
            return
        temp = TEMP_PREFIX + b"%s-%d" % (self._token, next(self._serial))
        if kind != FileType.HARDLINK:
            self._make(cur, temp, temp=True)
            return
        source = self._restored.get((self._job, a.link_index))
        if source is None:
            raise FileFailed(f"hardlink target (file index {a.link_index}) was not restored")
        assert self._walker is not None
        src_dir = self._walker.open_dir(source[:-1], create=False)
        try:
            if source[-1].startswith(HIDDEN_PREFIX):
                # the first selected name takes the hidden carrier's data
                os.rename(source[-1], cur.parts[-1], src_dir_fd=src_dir, dst_dir_fd=dir_fd)
                self._leftovers.paths.discard(source)
                self._restored[(self._job, a.link_index)] = cur.parts
                return
            os.link(source[-1], temp, src_dir_fd=src_dir, dst_dir_fd=dir_fd, follow_symlinks=False)
        finally:
            os.close(src_dir)
        cur.made, cur.temp = temp, True
        self._leftovers.paths.add((*cur.parts[:-1], temp))

    def _data(self, cur: _Current, stream: int, payload: bytes | memoryview) -> None:
        if cur.fd < 0:
            return
        offset, chunk = unpack_data(payload)
        data: Any = chunk
        if stream == _COMPRESSED_DATA:
            data = decompress_chunk(cur.decompress, chunk, offset, self.max_chunk_size)
        if cur.hasher is not None:
            cur.hasher.update(data)
        size = len(data)
        if offset == 0 and cur.fd != self._direct.fd:
            self._direct.begin(cur.fd, cur.attrs.size)
        if not self._direct.write(cur.fd, data, offset):
            written = os.pwrite(cur.fd, data, offset)
            while written < size:
                written += os.pwrite(cur.fd, memoryview(data)[written:], offset + written)
        cur.end = max(cur.end, offset + size)
        self.stats.bytes += size

    # -- finishing --------------------------------------------------------------------------

    def _finish_current(self) -> None:
        """The file's records are complete: size, attributes, then (under a temporary name) the
        rename that makes it appear."""
        cur, self._current = self._current, None
        if cur is None:
            return
        a = cur.attrs
        if cur.fd >= 0 and cur.fd == self._direct.fd:
            try:
                self._direct.finish()
            except FILE_ERRORS as exc:
                self._fail(cur, f"writing its data failed: {reason(exc)}")
                return
        try:
            if a.type == FileType.DIRECTORY:
                self._dirs.append(
                    (cur.parts, a, cur)
                )  # attributes set at the end, after the contents
            else:
                if cur.fd >= 0 and cur.end != a.size:
                    os.ftruncate(
                        cur.fd, a.size
                    )  # a sparse file's trailing hole, and its exact size
                made = cur.made
                # A node made here belongs to this process's user, and to the group a new file
                # gets in its directory: when that is what the attributes name, no chown.
                owned = made is not None and a.uid == self.policy.euid and a.gid == self._cwd_gid
                self._apply(a, cur, cur.fd, cur.dir_fd, made or cur.parts[-1], owned=owned)
                if cur.fd >= 0:
                    self._close(cur)
                if made is not None:
                    if cur.temp:
                        install(cur.dir_fd, made, cur.parts[-1], a.type)
                    self._leftovers.paths.discard((*cur.parts[:-1], made))
                    cur.made = None
            if a.nlink > 1 or cur.hidden:  # a hard link's first name: later names link to it
                self._restored[(self._job, cur.index)] = cur.parts
            if cur.hidden:
                self._leftovers.paths.add(
                    cur.parts
                )  # removed at the end unless a selected name takes it
            else:
                self.stats.files += 1
        except FILE_ERRORS as exc:
            self._error(f"{printable(a.path)}: cannot set attributes: {reason(exc)}; not restored")
        finally:
            self._discard(cur)

    def _apply(
        self,
        a: FileAttributes,
        cur: _Current,
        fd: int,
        dir_fd: int,
        name: bytes,
        *,
        owned: bool = False,
    ) -> None:
        apply_attributes(
            a,
            fd=fd,
            dir_fd=dir_fd,
            name=name,
            policy=self.policy,
            acl_access=cur.acl_access,
            acl_default=cur.acl_default,
            xattrs=cur.xattrs,
            warn=self._warn,
            owned=owned,
            mode_set=cur.mode_set,
        )

    def finish(self) -> RestoreStats:
        """The records are complete: finish the last file, then set directory attributes deepest
        first (after their contents), then remove hidden carriers; each step whatever the one
        before it did. Never raises."""
        with self._lock:
            return self._finish()

    def _finish(self) -> RestoreStats:
        if self._closed:
            return self.stats
        try:
            self._guarded(self._finish_current)
        finally:
            self._closed = True
            try:
                self._guarded(self._finish_dirs)
            finally:
                self._direct.close()
                self._release()
        return self.stats

    def abort(self, why: str = "the restore stopped") -> RestoreStats:
        """The records stopped early: the file being written is discarded (a file it would have
        replaced stays as it was), then everything `finish` does. Never raises. Safe to call from
        another thread than a `feed` in progress: it waits for that feed to return."""
        with self._lock:
            cur, self._current = self._current, None
            if cur is not None and not self._closed:
                self._fail(cur, f"{why} before its data was complete")
            return self._finish()

    def close(self) -> None:
        """Abort unless finished; for `with` and `finally`."""
        if not self._closed:
            self.abort()

    def __enter__(self) -> RestoreWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _finish_dirs(self) -> None:
        dirs, self._dirs = self._dirs, []
        walker = self._walker
        for parts, attrs, cur in sorted(dirs, key=lambda d: len(d[0]), reverse=True):
            if walker is None:
                break
            try:
                parent = (
                    walker.open_dir(parts[:-1], create=False) if parts else os.dup(walker.root_fd)
                )
                try:
                    fd = (
                        open_component(parent, parts[-1], join(self.where, parts))
                        if parts
                        else os.dup(parent)
                    )
                    try:
                        self._apply(attrs, cur, fd, parent, parts[-1] if parts else b".")
                    finally:
                        os.close(fd)
                finally:
                    os.close(parent)
            except FILE_ERRORS as exc:
                self._error(
                    f"{printable(attrs.path)}: cannot set directory attributes: {reason(exc)}"
                )

    # -- failures ---------------------------------------------------------------------------

    def _close(self, cur: _Current) -> None:
        fd, cur.fd = cur.fd, -1
        self._leftovers.fds.discard(fd)
        os.close(fd)

    def _discard(self, cur: _Current) -> None:
        """Close the file's descriptor and remove the name this restore made for it, if it still
        has them."""
        if cur.fd >= 0:
            self._direct.drop(cur.fd)
            with contextlib.suppress(OSError):
                self._close(cur)
        if cur.made is not None:
            made, cur.made = cur.made, None
            self._leftovers.paths.discard((*cur.parts[:-1], made))
            with contextlib.suppress(OSError):
                os.unlink(made, dir_fd=cur.dir_fd)
        cur.dir_fd = -1  # the writer's (`_parent`), still open for the next file

    def _fail(self, cur: _Current, text: str) -> None:
        """This file cannot be restored: report it, remove what was made of it, drop its other records."""
        self._discard(cur)
        if self._current is cur:
            self._current = None
        self._dropping = cur.index
        self._error(f"{printable(cur.attrs.path)}: {text}; not restored")
        if self.log is not None:
            self.log.warning("restore_file_failed", path=printable(cur.attrs.path), reason=text)

    def _unforeseen(self, exc: Exception, index: int) -> None:
        if self.log is not None:
            self.log.exception("restore_record_crashed", file_index=index)
        cur = self._current
        if cur is not None:
            self._fail(cur, f"internal error: {exc!r}")
        else:
            self._dropping = index
            self._error(f"file index {index}: internal error: {exc!r}; not restored")

    def _guarded(self, step: Any) -> None:
        try:
            step()
        except Exception as exc:  # finish() must return its stats whatever a step hit
            self._unforeseen(exc, 0)

    def _reject(self, text: str) -> None:
        self.rejected = f"restore rejected: {text}; nothing was restored"
        self._error(self.rejected)

    def _refuse(self, path: bytes, why: str) -> None:
        self._error(f"{printable(path)}: refused: {why}")
        if self.log is not None:
            self.log.warning("restore_path_refused", path=printable(path), reason=why)

    def _warn(self, text: str) -> None:
        self.stats.warn(text)

    def _error(self, text: str) -> None:
        self.stats.error(text)
