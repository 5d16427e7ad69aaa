"""Which jobs and files a restore takes, as pure functions over catalog rows.

The chain for "the latest state before T" (and, with `chain_to`, for "up to job N") is Bareos's: the newest Full before T, the newest
Differential after that Full (and before T), then every Incremental after the Differential (or the
Full). The latest version of each path wins; a path whose latest row is a deletion is absent.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Sequence

from director.catalog import FileRow, JobRow

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
