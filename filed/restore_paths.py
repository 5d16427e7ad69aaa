"""Where a restored file lands: the where/prefix/suffix/regexwhere mapping and the safe walk to it.

Safety: every target is built under `where` component by component; a `..` component, a NUL, or
an existing symlink among the parent directories (for example one restored a moment ago) makes
the file refused, never written.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass


class UnsafePath(Exception):
    """A restore target that would land outside `where`."""


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
    """A backed-up path → its restore target under `where`, and the directories on the way."""

    where: bytes
    strip_prefix: bytes | None = None
    add_prefix: bytes | None = None
    add_suffix: bytes | None = None
    regex: tuple[tuple[re.Pattern[bytes], bytes], ...] = ()

    def target_of(self, path: bytes) -> bytes:
        if b"\0" in path:
            raise UnsafePath("name contains a NUL byte")
        mapped = path
        if self.strip_prefix and mapped.startswith(self.strip_prefix):
            mapped = mapped[len(self.strip_prefix) :] or b"/"
        if self.add_prefix:
            mapped = self.add_prefix.rstrip(b"/") + (mapped if mapped.startswith(b"/") else b"/" + mapped)
        if self.add_suffix:
            mapped += self.add_suffix
        for pattern, replacement in self.regex:
            mapped = pattern.sub(replacement, mapped)
        parts = [p for p in mapped.split(b"/") if p not in (b"", b".")]
        if b".." in parts:
            raise UnsafePath("path contains '..'")
        if not parts:
            return self.where
        return os.path.join(self.where, *parts)

    def check_parents(self, target: bytes) -> None:
        """Create missing parent directories; refuse a parent that is a symlink or not a directory."""
        if self.where == b"/":
            parent = os.path.dirname(target)
            os.makedirs(parent, exist_ok=True)
            return
        rel = os.path.relpath(os.path.dirname(target), self.where)
        current = self.where
        if rel == b".":
            return
        for part in rel.split(b"/"):
            current = os.path.join(current, part)
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                os.mkdir(current, 0o700)
                continue
            if stat.S_ISLNK(st.st_mode):
                raise UnsafePath(f"parent {printable(current)} is a symlink; refusing to follow it")
            if not stat.S_ISDIR(st.st_mode):
                raise UnsafePath(f"parent {printable(current)} is not a directory")
