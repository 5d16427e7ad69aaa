"""A restore's selection made in the catalog: file-index ranges per job, carriers and the count.

`choose` runs on the catalog thread. It walks the latest state of the chosen jobs a directory at
a time (`selection.selected_rows`), puts each selected (JobId, FileIndex) in a TEMP table, finds
the hard-link carriers the selection needs but did not choose, and aggregates the table into
file-index ranges in SQL; `bootstrap.bootstrap_from_ranges` cuts those by JobMedia into the
bootstrap. The Director holds the ranges and the selected directories, never the job's rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from director.catalog import Catalog
from director.restore.selection import Selection, selected_rows
from protocol.attributes import FileType, decode_attributes


@dataclass(frozen=True)
class Chosen:
    """What a restore reads: FileIndex ranges per JobId (carriers included), the carriers
    restored hidden, and how many files the catalog selected."""

    ranges: dict[int, tuple[tuple[int, int], ...]]
    hidden: tuple[tuple[int, int], ...]  # (JobId, FileIndex) of hard-link carriers
    files: int


def choose(catalog: Catalog, job_ids: Sequence[int], selection: Selection) -> Chosen:
    """Select in the catalog (see the module docstring); on the catalog thread."""
    reader = catalog.chain_reader(job_ids)
    links: set[tuple[int, int]] = set()
    with catalog.index_set() as chosen:
        for batch in selected_rows(reader, selection):
            chosen.add((r.job_id, r.file_index) for r in batch if r.file_index > 0)
            for row in batch:
                attrs = decode_attributes(row.lstat)
                if attrs.type == FileType.HARDLINK:
                    links.add((row.job_id, attrs.link_index))
        files = len(chosen)
        hidden = catalog.existing_indexes(chosen.missing(links))
        chosen.add(sorted(hidden))
        return Chosen(chosen.ranges(), tuple(sorted(hidden)), files)
