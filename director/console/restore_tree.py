"""The interactive restore tree: cd, ls, dir, mark, unmark, find, estimate, done (as in bconsole).

The tree never holds the job's file list: `ls` reads one directory of the latest state from the
catalog (`ChainReader.listing`), marks are kept as the commands gave them (mark or unmark a path
and everything under it; the later one wins), and what needs a whole subtree (the count a mark
prints, `find`, `estimate`, `done`) walks it a directory at a time on the catalog thread.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import posixpath
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from director.catalog import Catalog, FileRow
from director.console.format import display_path
from director.console.paging import split_lines
from director.console.registry import Reply, Session
from director.restore.plan import Plan, choose_files
from director.restore.selection import Selection, deciding_mark, selected_rows
from protocol.attributes import FileType, decode_attributes

if TYPE_CHECKING:
    from director.catalog.service import CatalogService

PROMPT = "$ "
HELP = (
    "Commands: cd DIR, ls [PATTERN], dir [PATTERN], mark PATTERN|*, unmark PATTERN|*, find PATTERN, "
    "estimate, pwd, done (restore the marked files), quit (cancel)"
)


@dataclass(frozen=True)
class Entry:
    """One name in the current directory: its full path, whether it is a directory, and its
    newest live row (None: a directory on the way to backed-up files, without a row)."""

    path: bytes
    is_dir: bool
    row: FileRow | None


def _entries(catalog: Catalog, job_ids: Sequence[int], path: bytes) -> list[Entry] | None:
    """The entries of one directory, by name; None when it is not a directory of the jobs."""
    found = catalog.chain_reader(job_ids).listing(path)
    if found is None:
        return None
    rows, subdirs = found
    dirs = {p.rstrip(b"/") for p in subdirs}
    out = {
        row.full_path: Entry(
            row.full_path,
            row.full_path in dirs or decode_attributes(row.lstat).type == FileType.DIRECTORY,
            row,
        )
        for row in rows
    }
    for d in dirs:
        out.setdefault(d, Entry(d, True, None))
    return [out[p] for p in sorted(out)]


def _start(catalog: Catalog, job_ids: Sequence[int]) -> bytes:
    """Where the tree opens: down from / while a directory without a row of its own holds
    nothing but one directory (the FileSet's top, or where its tops part)."""
    current = b"/"
    while True:
        entries = _entries(catalog, job_ids, current) or []
        if len(entries) != 1 or not entries[0].is_dir:
            return current
        current = entries[0].path
        if entries[0].row is not None:
            return current


def _changed(
    catalog: Catalog,
    job_ids: Sequence[int],
    top: bytes,
    before: Sequence[tuple[bool, bytes]],
    after: Sequence[tuple[bool, bytes]],
) -> int:
    """How many live paths at and under `top` the new mark changes."""
    changed = 0
    for batch in catalog.chain_reader(job_ids).walk(top):
        for row in batch:
            was = deciding_mark(row.full_path, before) is not None
            changed += was != (deciding_mark(row.full_path, after) is not None)
    return changed


def _found(catalog: Catalog, job_ids: Sequence[int], pattern: str) -> list[bytes]:
    hits: list[bytes] = []
    for batch in catalog.chain_reader(job_ids).walk(b"/"):
        hits += (
            r.full_path
            for r in batch
            if fnmatch.fnmatchcase(os.fsdecode(posixpath.basename(r.full_path)), pattern)
        )
    return sorted(hits)


def _estimate(catalog: Catalog, job_ids: Sequence[int], selection: Selection) -> tuple[int, int]:
    files = size = 0
    for batch in selected_rows(catalog.chain_reader(job_ids), selection):
        files += len(batch)
        size += sum(decode_attributes(r.lstat).size for r in batch)
    return files, size


class Tree:
    """One console's walk through the latest state of a restore's jobs (see the module docstring)."""

    def __init__(self, db: CatalogService, job_ids: Sequence[int], cwd: bytes = b"/") -> None:
        self.db = db
        self.job_ids = list(job_ids)
        self.cwd = cwd
        self.marks: list[tuple[bool, bytes]] = []

    @property
    def selection(self) -> Selection:
        return Selection(marks=tuple(self.marks))

    def _resolve(self, name: str) -> bytes:
        target = os.fsencode(name)
        return posixpath.normpath(
            target if target.startswith(b"/") else posixpath.join(self.cwd, target)
        )

    async def _here(self) -> list[Entry]:
        entries = await self.db.run(lambda c: _entries(c, self.job_ids, self.cwd))
        return entries or []

    async def _matches(self, pattern: str) -> list[Entry]:
        return [
            e
            for e in await self._here()
            if fnmatch.fnmatchcase(os.fsdecode(posixpath.basename(e.path)), pattern)
        ]

    def _line(self, entry: Entry, long: bool) -> str:
        name = display_path(posixpath.basename(entry.path)) + ("/" if entry.is_dir else "")
        mark = "*" if deciding_mark(entry.path, self.marks) is not None else " "
        if not long:
            return f"{mark}{name}"
        if entry.row is None:
            return f"d---- {'-':>6} {'-':>6} {'-':>14} {mark}{name}"
        a = decode_attributes(entry.row.lstat)
        kind = "d" if a.type == FileType.DIRECTORY else "l" if a.type == FileType.SYMLINK else "-"
        return f"{kind}{oct(a.mode)[-4:]} {a.uid:>6} {a.gid:>6} {a.size:>14,} {mark}{name}"

    async def _mark(self, verb: str, rest: str) -> str:
        if rest and "/" not in rest:
            targets = [e.path for e in await self._matches(rest)]
        else:
            targets = [self._resolve(rest)] if rest else []
        changed = 0
        for target in targets:
            before = tuple(self.marks)
            self.marks.append((verb == "mark", target))
            after = tuple(self.marks)
            changed += await self.db.run(
                functools.partial(
                    _changed, job_ids=self.job_ids, top=target, before=before, after=after
                )
            )
        return f"{changed} file{'s' if changed != 1 else ''} {verb}ed."

    async def command(self, line: str) -> tuple[str, bool]:
        """Run one tree command; returns (text, finished)."""
        verb, _, rest = line.strip().partition(" ")
        rest = rest.strip().strip('"')
        if verb in ("ls", "dir"):
            entries = await self._matches(rest or "*")
            return "\n".join(self._line(e, verb == "dir") for e in entries) or "(empty)", False
        if verb == "cd":
            target = self._resolve(rest or "/")
            if await self.db.run(lambda c: _entries(c, self.job_ids, target)) is None:
                return f"Invalid path given: {rest}", False
            self.cwd = target
            return f"cwd is: {os.fsdecode(self.cwd)}", False
        if verb == "pwd":
            return f"cwd is: {os.fsdecode(self.cwd)}", False
        if verb in ("mark", "unmark"):
            return await self._mark(verb, rest), False
        if verb == "find":
            hits = await self.db.run(lambda c: _found(c, self.job_ids, rest or "*"))
            return "\n".join(display_path(p) for p in hits) or "No matches.", False
        if verb == "estimate":
            files, size = await self.db.run(lambda c: _estimate(c, self.job_ids, self.selection))
            return f"{files} total files; {files} marked to be restored; {size:,} bytes.", False
        if verb == "done":
            return "", True
        if verb in ("help", "?"):
            return HELP, False
        return f'Invalid command "{verb}". Enter "done" to exit.\n{HELP}', False


def enter_tree(session: Session, plan: Plan, confirm: Callable[[Plan], Reply]) -> Reply:
    """Open the tree on the plan's jobs; `done` fills `plan.chosen` with the marked rows only."""
    tree = Tree(session.director.db, [j.job_id for j in plan.jobs])

    async def step(line: str) -> Reply:
        if line.strip() in ("quit", "exit", ".", "q"):
            return Reply(text="Restore canceled.", data={"restore": {"started": False}})
        text, finished = await tree.command(line)
        if finished:
            chosen = await choose_files(tree.db, plan, tree.selection)
            if not chosen.files:
                session.pending = step
                return Reply(text="No files are marked; mark some or enter quit.", prompt=PROMPT)
            return confirm(plan)
        session.pending = step
        return _answer(text)

    session.pending = step
    ids = ",".join(str(j) for j in tree.job_ids)
    intro = Reply(text="", prompt=PROMPT)

    async def opening() -> AsyncGenerator[Reply, None]:
        """Find where the tree opens (catalog reads, off the event loop) and say so."""
        tree.cwd = await tree.db.run(lambda c: _start(c, tree.job_ids))
        files = sum(j.files for j in plan.jobs)
        intro.text = (
            f"{plan.selected_text()}\n"
            f"Building directory tree for JobId(s) {ids} ...\n"
            f"{files} files inserted into the tree (as the jobs backed them up; read one "
            "directory at a time).\n\n"
            "You are now entering file selection mode where you add (mark) and remove (unmark) "
            "files to be restored. No files are initially added.\n"
            + HELP
            + f"\n\ncwd is: {os.fsdecode(tree.cwd)}"
        )
        return
        yield  # an async generator that sends no part of its own: it completes `intro`

    intro.stream = opening()
    return intro


def _answer(text: str) -> Reply:
    """A tree command's answer; a long one (`ls` of a huge directory, `find *`) in parts."""
    parts = list(split_lines(text.split("\n")))
    last = Reply(text="\n".join(parts.pop()) if parts else "", prompt=PROMPT)
    if parts:
        last.stream = _parts(parts)
    return last


async def _parts(parts: list[list[str]]) -> AsyncGenerator[Reply, None]:
    for lines in parts:
        yield Reply(text="\n".join(lines), data=lines, rows="tree")
