"""A restore's selection made in the catalog: file-index ranges per job, carriers and the count.

`choose` runs on the catalog thread (`choose_in_steps` from the event loop, one page per step,
so other catalog calls run in between). It walks the latest state of the chosen jobs a
directory at a time (`selection.selected_rows`), marks each selected (JobId, FileIndex) in
`marks.IndexMarks` (a byte per FileIndex of each job), finds the hard-link carriers the selection
needs but did not choose, and cuts the marks into file-index ranges;
`bootstrap.bootstrap_from_ranges` cuts those by JobMedia into the bootstrap. The Director holds
the marks, the ranges and the selected directories, never the job's rows.
"""

from __future__ import annotations

import functools
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from director.catalog import Catalog
from director.restore.marks import IndexMarks
from director.restore.selection import Selection, selected_rows
from protocol.attributes import hard_link_of

if TYPE_CHECKING:
    from director.catalog.service import CatalogService


@dataclass(frozen=True)
class Chosen:
    """What a restore reads: FileIndex ranges per JobId (carriers included), the carriers
    restored hidden, and how many files the catalog selected."""

    ranges: dict[int, tuple[tuple[int, int], ...]]
    hidden: tuple[tuple[int, int], ...]  # (JobId, FileIndex) of hard-link carriers
    files: int


def _steps(
    catalog: Catalog, job_ids: Sequence[int], selection: Selection
) -> Generator[None, None, Chosen]:
    """The selection, a page of the walk per step; returns what was chosen."""
    reader = catalog.chain_reader(job_ids)
    links: set[tuple[int, int]] = set()
    chosen = IndexMarks()
    for batch in selected_rows(reader, selection):
        chosen.add((r.job_id, r.file_index) for r in batch if r.file_index > 0)
        for row in batch:
            link_index = hard_link_of(row.lstat)
            if link_index:
                links.add((row.job_id, link_index))
        yield
    files = len(chosen)
    hidden = catalog.existing_indexes(chosen.missing(links))
    chosen.add(sorted(hidden))
    return Chosen(chosen.ranges(), tuple(sorted(hidden)), files)


def _step(steps: Generator[None, None, Chosen]) -> Chosen | None:
    """One step; what was chosen once the selection is done, else None."""
    try:
        next(steps)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]  # StopIteration.value is Any
    return None


def choose(catalog: Catalog, job_ids: Sequence[int], selection: Selection) -> Chosen:
    """Select in the catalog (see the module docstring); on the catalog thread, in one go."""
    steps = _steps(catalog, job_ids, selection)
    while True:
        chosen = _step(steps)
        if chosen is not None:
            return chosen


async def choose_in_steps(
    db: CatalogService, job_ids: Sequence[int], selection: Selection
) -> Chosen:
    """`choose` one page at a time on the catalog thread: a selection of a whole large job
    does not hold the thread from other jobs' catalog calls."""
    steps = await db.run(functools.partial(_steps, job_ids=job_ids, selection=selection))
    try:
        while True:
            chosen = await db.run_blocking(functools.partial(_step, steps))
            if chosen is not None:
                return chosen
    finally:
        await db.run_blocking(steps.close)  # stopped early: the walk ends on the catalog thread
