"""Build the bootstrap the Storage Daemon reads: volumes, sessions and file-index ranges, per job."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence

from director.catalog import FileRow, JobMediaRow
from protocol.attributes import FileType, decode_attributes
from protocol.jobs import BootstrapSpec


def ranges(indexes: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """Sorted inclusive ranges: [1, 2, 3, 7, 9, 10] → ((1, 3), (7, 7), (9, 10))."""
    out: list[list[int]] = []
    for i in sorted(set(indexes)):
        if out and i == out[-1][1] + 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return tuple((a, b) for a, b in out)


def hardlink_carriers(
    selected: Sequence[FileRow], all_rows: Iterable[FileRow]
) -> set[tuple[int, int]]:
    """(job, file index) of data carriers a selection needs but did not choose (restored hidden)."""
    chosen = {(r.job_id, r.file_index) for r in selected}
    needed: set[tuple[int, int]] = set()
    for row in selected:
        attrs = decode_attributes(row.lstat)
        if attrs.type == FileType.HARDLINK and (row.job_id, attrs.link_index) not in chosen:
            needed.add((row.job_id, attrs.link_index))
    available = {(r.job_id, r.file_index) for r in all_rows}
    return needed & available


def build_bootstrap(
    selected: Sequence[FileRow],
    hidden: set[tuple[int, int]],
    jobmedia: Sequence[JobMediaRow],
    job_order: Sequence[int],
) -> list[BootstrapSpec]:
    """One entry per (job, volume) holding selected indexes, in job order (oldest first)."""
    by_job: dict[int, set[int]] = {}
    for row in selected:
        if row.file_index > 0:
            by_job.setdefault(row.job_id, set()).add(row.file_index)
    for job_id, index in hidden:
        by_job.setdefault(job_id, set()).add(index)
    return bootstrap_from_ranges(
        {job_id: ranges(indexes) for job_id, indexes in by_job.items()}, jobmedia, job_order
    )


def bootstrap_from_ranges(
    index_ranges: Mapping[int, Sequence[tuple[int, int]]],
    jobmedia: Sequence[JobMediaRow],
    job_order: Sequence[int],
) -> list[BootstrapSpec]:
    """`build_bootstrap` from sorted, disjoint FileIndex ranges per job (`chosen.choose`): each
    range clipped to each JobMedia row of its job that it meets."""
    specs: list[BootstrapSpec] = []
    for job_id in job_order:
        runs = index_ranges.get(job_id)
        if not runs:
            continue
        starts = [first for first, _last in runs]
        for jm in (m for m in jobmedia if m.job_id == job_id):
            here: list[tuple[int, int]] = []
            for first, last in runs[max(bisect.bisect_right(starts, jm.first_index) - 1, 0) :]:
                if first > jm.last_index:
                    break
                if last >= jm.first_index:
                    here.append((max(first, jm.first_index), min(last, jm.last_index)))
            if here:
                specs.append(
                    BootstrapSpec(
                        volume_name=jm.volume_name,
                        session_id=jm.session_id,
                        session_time=jm.session_time,
                        file_indexes=tuple(here),
                        start_block=jm.start_block,
                        start_addr=jm.start_addr,
                        job_id=job_id,
                    )
                )
    return specs
