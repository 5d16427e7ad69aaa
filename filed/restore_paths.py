"""Where a restored file lands: the where/prefix/suffix/regexwhere mapping and the walk to it by descriptor.

Safety: `where` (or `/`) is opened component by component from `/` with O_NOFOLLOW|O_DIRECTORY and
refused when any component is a symlink, when it is writable by others, or when it lies under a
directory others may write to and is owned by someone else. Inside it every target's parents are
walked the same way with `openat`, so a directory swapped for a symlink before or during the restore
(by the restore itself, or by a local user) is refused, never followed; `..` and NUL are refused
outright. There is no special case for `/`: it is just the descriptor the walk starts from.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import re
import stat
from dataclasses import dataclass
from typing import Final

OPEN_DIR: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NEW_DIR_MODE: Final = 0o700  # directories the restore creates, until their own attributes are set
DIR_CACHE: Final = 32  # parent directories kept open (a restore writes one directory at a time)


class UnsafePath(Exception):
    """A restore target that would land outside `where`, or a `where` that is not safe to write to."""


class NotADirectory(UnsafePath):
    """A file (not a symlink) where a directory of the path must be."""


def printable(path: bytes) -> str:
    return path.decode("utf-8", "backslashreplace").replace("\n", "\\n")


def parse_regex_where(spec: str) -> list[tuple[re.Pattern[bytes], bytes]]:
    """Bareos `regexwhere=!a!b!,!c!d!`: sed-like substitutions, the first character is the separator.

    Anything wrong raises ValueError naming the expression: a missing separator, a pattern that
    does not compile, a replacement that refers to a group the pattern lacks. All of it is found
    here, before the first file, never by the substitution of some file in the middle.
    """
    out: list[tuple[re.Pattern[bytes], bytes]] = []
    for part in (p for p in spec.split(",") if p):
        sep = part[0]
        pieces = part[1:].split(sep)
        if len(pieces) < 2:
            raise ValueError(f"bad regexwhere expression {part!r} (use !from!to!)")
        replacement = os.fsencode(pieces[1]).replace(b"$", b"\\")
        try:
            pattern = re.compile(os.fsencode(pieces[0]))
            pattern.sub(replacement, b"")  # parses the replacement: a bad group reference fails now
        except re.error as exc:
            raise ValueError(f"bad regexwhere expression {part!r}: {exc}") from exc
        out.append((pattern, replacement))
    return out


@dataclass(frozen=True)
class PathMap:
    """A backed-up path → its restore target under `where`, as components below `where`."""

    where: bytes
    strip_prefix: bytes | None = None
    add_prefix: bytes | None = None
    add_suffix: bytes | None = None
    regex: tuple[tuple[re.Pattern[bytes], bytes], ...] = ()

    def parts_of(self, path: bytes) -> tuple[bytes, ...]:
        if b"\0" in path:
            raise UnsafePath("name contains a NUL byte")
        mapped = path
        if self.strip_prefix and mapped.startswith(self.strip_prefix):
            mapped = mapped[len(self.strip_prefix) :] or b"/"
        if self.add_prefix:
            mapped = self.add_prefix.rstrip(b"/") + (
                mapped if mapped.startswith(b"/") else b"/" + mapped
            )
        if self.add_suffix:
            mapped += self.add_suffix
        for pattern, replacement in self.regex:
            mapped = pattern.sub(replacement, mapped)
        if b"\0" in mapped:
            raise UnsafePath("name contains a NUL byte")
        parts = tuple(mapped.lstrip(b"/").split(b"/"))
        if b"" in parts or b"." in parts:  # "//", "/./", a trailing "/"
            parts = tuple(p for p in parts if p not in (b"", b"."))
        if b".." in parts:
            raise UnsafePath("path contains '..'")
        return parts

    def target_of(self, path: bytes) -> bytes:
        """The target as a path, for messages (files are reached by descriptor, never by it)."""
        return join(self.where, self.parts_of(path))


def join(where: bytes, parts: tuple[bytes, ...]) -> bytes:
    return os.path.join(where, *parts) if parts else where


def _open_component(dir_fd: int, name: bytes, shown: bytes, create: bool) -> tuple[int, bool]:
    """One directory below `dir_fd`, never through a symlink; (fd, created)."""
    try:
        return os.open(name, OPEN_DIR, dir_fd=dir_fd), False
    except FileNotFoundError:
        if not create:
            raise
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR):
            raise
        try:
            link = stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
        except OSError:
            link = exc.errno != errno.ENOTDIR
        if link:
            raise UnsafePath(f"{printable(shown)} is a symlink; refusing to follow it") from exc
        raise NotADirectory(f"{printable(shown)} is not a directory") from exc
    with contextlib.suppress(
        FileExistsError
    ):  # made by someone else meanwhile: opened as any other
        os.mkdir(name, NEW_DIR_MODE, dir_fd=dir_fd)
    return _open_component(dir_fd, name, shown, create=False)[0], True


def open_component(dir_fd: int, name: bytes, shown: bytes) -> int:
    """An existing directory below `dir_fd`, opened without following a symlink (UnsafePath)."""
    return _open_component(dir_fd, name, shown, create=False)[0]


def open_where(where: bytes, create: bool = True) -> int:
    """A descriptor on `where`, walked from `/` without following any symlink; missing components
    are created 0700. Refused (UnsafePath): a relative path, a symlink or non-directory component, a
    `where` writable by others, one under an others-writable directory that is not owned by us or
    root (a sticky /tmp lets anyone make /tmp/x and then swap what is inside)."""
    if not where.startswith(b"/"):
        raise UnsafePath(f"where {printable(where)} is not an absolute path")
    parts = tuple(p for p in where.split(b"/") if p not in (b"", b"."))
    if b".." in parts:
        raise UnsafePath(f"where {printable(where)} contains '..'")
    fd = os.open(b"/", OPEN_DIR)
    shown = b""
    try:
        parent_open = False  # the directory we are in lets others create names
        for part in parts:
            shown += b"/" + part
            try:
                child, _created = _open_component(fd, part, shown, create)
            except NotADirectory as exc:  # said as mkdir would say it
                raise NotADirectoryError(
                    errno.ENOTDIR, os.strerror(errno.ENOTDIR), os.fsdecode(shown)
                ) from exc
            os.close(fd)
            fd = child
            st = os.fstat(fd)
            if parent_open and st.st_uid not in (0, os.geteuid()):
                raise UnsafePath(
                    f"{printable(shown)} is in a directory others can write to and belongs to "
                    f"uid {st.st_uid}, not to this daemon or root"
                )
            parent_open = bool(st.st_mode & stat.S_IWOTH)
        if os.fstat(fd).st_mode & stat.S_IWOTH:
            raise UnsafePath(f"where {printable(where)} is writable by others")
    except BaseException:
        os.close(fd)
        raise
    return fd


class DirWalker:
    """Parent directories below `where`'s descriptor, opened with `openat(…, O_NOFOLLOW)` one
    component at a time (created 0700 when missing), the most recent ones kept open."""

    def __init__(self, root_fd: int, where: bytes) -> None:
        self.root_fd = root_fd
        self.where = where
        self._cache: collections.OrderedDict[tuple[bytes, ...], int] = collections.OrderedDict()

    def open_dir(self, parts: tuple[bytes, ...], create: bool = True) -> int:
        """A new descriptor (the caller closes it) on the directory `parts` below `where`."""
        return os.dup(self._dir(parts, create))

    def _dir(self, parts: tuple[bytes, ...], create: bool) -> int:
        depth = len(parts)
        while depth and parts[:depth] not in self._cache:
            depth -= 1
        fd = self._cache[parts[:depth]] if depth else self.root_fd
        if depth:
            self._cache.move_to_end(parts[:depth])
        for i in range(depth, len(parts)):
            fd, _created = _open_component(fd, parts[i], join(self.where, parts[: i + 1]), create)
            self._cache[parts[: i + 1]] = fd
        while len(self._cache) > DIR_CACHE:
            os.close(self._cache.popitem(last=False)[1])
        return fd

    def holds(self, parts: tuple[bytes, ...]) -> bool:
        """Whether the directory `parts` below `where` is open here (a directory, reached without
        following a symlink)."""
        return parts in self._cache

    def forget(self, parts: tuple[bytes, ...]) -> None:
        """A directory was replaced or removed: drop it and everything below it from the cache."""
        for key in [k for k in self._cache if k[: len(parts)] == parts]:
            os.close(self._cache.pop(key))

    def close(self) -> None:
        while self._cache:
            with contextlib.suppress(OSError):
                os.close(self._cache.popitem()[1])
