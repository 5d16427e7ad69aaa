"""Which jobs and files a restore takes: pure functions over catalog rows, and a `Selection`
read from the catalog a directory at a time (`selected_rows`).

The chain for "the latest state before T" (and, with `chain_to`, for "up to job N") is Bareos's: the newest Full before T, the newest
Differential after that Full (and before T), then every Incremental after the Differential (or the
Full). The latest version of each path wins; a path whose latest row is a deletion is absent.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from director.catalog import FileRow, JobRow
from director.catalog.walk import ChainReader

OK_STATUSES = frozenset({"T", "W"})


def backup_chain(
    jobs: Iterable[JobRow], client_id: int | None, fileset_id: int | None, before: float | None
) -> list[JobRow]:
    """The jobs whose files make up the latest state before `before`, oldest first."""
    usable = [
        j
        for j in jobs
        if j.type == "B"
        and j.status in OK_STATUSES
        and (client_id is None or j.client_id == client_id)
        and (fileset_id is None or j.fileset_id == fileset_id)
        and (before is None or (j.start_time or 0) <= before)
    ]
    usable.sort(key=lambda j: (j.start_time or 0, j.job_id))
    fulls = [j for j in usable if j.level == "F"]
    if not fulls:
        return []
    full = fulls[-1]
    after_full = [
        j for j in usable if (j.start_time or 0, j.job_id) > (full.start_time or 0, full.job_id)
    ]
    diffs = [j for j in after_full if j.level == "D"]
    base = diffs[-1] if diffs else full
    incrs = [
        j
        for j in after_full
        if j.level == "I" and (j.start_time or 0, j.job_id) > (base.start_time or 0, base.job_id)
    ]
    return [full, *([base] if diffs else []), *incrs]


def chain_to(jobs: Iterable[JobRow], target: JobRow) -> list[JobRow]:
    """The restore chain ending at `target` (Bareos "full restore to a specified job"): the newest
    Full up to it, the newest Differential after that Full up to it, then every Incremental after
    that up to it; oldest first. Empty when there is no Full before it."""
    key = (target.start_time or 0, target.job_id)
    upto = [j for j in jobs if (j.start_time or 0, j.job_id) <= key and j.job_id != target.job_id]
    return backup_chain([*upto, target], target.client_id, None, None)


def latest_files(chain: Sequence[tuple[JobRow, Sequence[FileRow]]]) -> dict[bytes, FileRow]:
    """Path → the newest row for it (deletion rows included, with file_index 0)."""
    out: dict[bytes, FileRow] = {}
    for _job, rows in chain:
        for row in rows:
            out[row.full_path] = row
    return out


def live(files: dict[bytes, FileRow]) -> dict[bytes, FileRow]:
    """Drop paths whose latest row records a deletion, and everything under a deleted directory."""
    deleted = sorted(p for p, r in files.items() if r.file_index == 0)
    out = {p: r for p, r in files.items() if r.file_index != 0}
    for gone in deleted:
        prefix = gone.rstrip(b"/") + b"/"
        for path in [p for p in out if p.startswith(prefix)]:
            row = out[path]
            # A file re-created later under a deleted directory belongs to a newer job: keep it.
            if row.job_id <= files[gone].job_id:
                del out[path]
    return out


def _under(path: bytes, directory: bytes) -> bool:
    d = directory.rstrip(b"/")
    return path == d or path.startswith(d + b"/") or d == b""


def select(
    files: dict[bytes, FileRow],
    *,
    file: Sequence[bytes] = (),
    directory: Sequence[bytes] = (),
    fileregex: str | None = None,
    all_files: bool = False,
) -> dict[bytes, FileRow]:
    """The rows a restore takes, with every selected file's parent directories that are in the backup."""
    chosen: dict[bytes, FileRow] = {}
    if all_files or not (file or directory or fileregex):
        chosen = dict(files)
    for name in file:
        wanted = name.rstrip(b"/") or b"/"
        if any(ch in wanted for ch in (b"*", b"?", b"[")):
            pattern = re.compile(os.fsencode(fnmatch.translate(os.fsdecode(wanted))))
            chosen.update({p: r for p, r in files.items() if pattern.fullmatch(p)})
        elif wanted in files:
            chosen[wanted] = files[wanted]
    for d in directory:
        chosen.update({p: r for p, r in files.items() if _under(p, d)})
    if fileregex:
        regex = re.compile(os.fsencode(fileregex))
        base = chosen if (file or directory) else files
        chosen = {p: r for p, r in base.items() if regex.search(p)}
    for path in list(chosen):
        parent = os.path.dirname(path)
        while parent and parent not in chosen and parent in files:
            chosen[parent] = files[parent]
            if parent == b"/":
                break
            parent = os.path.dirname(parent)
    return chosen


@dataclass(frozen=True)
class Selection:
    """What a restore takes from the latest state of its jobs, as the command line or the tree
    said it: `select`'s arguments, or the tree's marks (each `(True, path)` marks and each
    `(False, path)` unmarks a path and everything under it; a later mark wins)."""

    files: tuple[bytes, ...] = ()
    directories: tuple[bytes, ...] = ()
    fileregex: str | None = None
    all_files: bool = False
    marks: tuple[tuple[bool, bytes], ...] = ()


def _covers(path: bytes, top: bytes) -> bool:
    """Whether `top` (a full path) is `path` or a directory above it."""
    return _under(path, top.rstrip(b"/"))


def deciding_mark(path: bytes, marks: Sequence[tuple[bool, bytes]]) -> int | None:
    """The index of the mark that decides `path` when it is a mark, else None."""
    for n in range(len(marks) - 1, -1, -1):
        on, top = marks[n]
        if _covers(path, top):
            return n if on else None
    return None


def _decided_by(row: FileRow, marks: Sequence[tuple[bool, bytes]], n: int) -> bool:
    return deciding_mark(row.full_path, marks) == n


def _tree_rows(reader: ChainReader, marks: Sequence[tuple[bool, bytes]]) -> Iterator[list[FileRow]]:
    """The rows the tree's marks choose (no parents added: the tree marks what it restores);
    each row once, from the walk of the mark that decides it."""
    for n, (on, top) in enumerate(marks):
        if on:
            yield from reader.walk(top, functools.partial(_decided_by, marks=marks, n=n))


def _chosen_rows(reader: ChainReader, sel: Selection) -> Iterator[list[FileRow]]:
    """What `select` chooses before parents are added (a row may come twice)."""
    regex = re.compile(os.fsencode(sel.fileregex)) if sel.fileregex else None

    def matches(row: FileRow) -> bool:
        return regex is None or regex.search(row.full_path) is not None

    if sel.all_files or not (sel.files or sel.directories or sel.fileregex):
        yield from reader.walk(b"/", None if regex is None else matches)
        return
    if not (sel.files or sel.directories):
        yield from reader.walk(b"/", matches)
        return
    for name in sel.files:
        wanted = name.rstrip(b"/") or b"/"
        if any(ch in wanted for ch in (b"*", b"?", b"[")):
            pattern = re.compile(os.fsencode(fnmatch.translate(os.fsdecode(wanted))))
            for batch in reader.walk(b"/", matches):
                found = [row for row in batch if pattern.fullmatch(row.full_path)]
                if found:
                    yield found
            continue
        row = reader.live(wanted)
        if row is not None and matches(row):
            yield [row]
    for directory in sel.directories:
        yield from reader.walk(directory.rstrip(b"/") or b"/", matches)


def selected_rows(reader: ChainReader, sel: Selection) -> Iterator[list[FileRow]]:
    """The live rows a restore takes, in batches, as `select` (or the tree) chooses them from
    the whole latest state, but read a directory at a time: the selected files, then (for
    `select`) every live directory above one up to the first that is not in the backup. A row
    may come more than once; nothing of the job is held as a whole, only the directories."""
    if sel.marks:
        yield from _tree_rows(reader, sel.marks)
        return
    parents: set[bytes] = set()
    chosen_dirs: set[bytes] = set()  # directories the walks chose: their own parents are known
    for batch in _chosen_rows(reader, sel):
        for chosen in batch:
            if chosen.name:  # a file: its Path is its directory ("/a/b/" -> "/a/b", "/" -> "/")
                parents.add(chosen.path.rstrip(b"/") or chosen.path[:1])
            else:
                path = chosen.full_path
                chosen_dirs.add(path)
                if path != b"/":
                    parents.add(os.path.dirname(path))
        yield batch
    seen: set[bytes] = chosen_dirs
    out: list[FileRow] = []
    for start in sorted(parents):
        parent = start
        while parent and parent not in seen:
            seen.add(parent)
            row = reader.live(parent)
            if row is None:
                break
            out.append(row)
            if parent == b"/":
                break
            parent = os.path.dirname(parent)
    if out:
        yield out
