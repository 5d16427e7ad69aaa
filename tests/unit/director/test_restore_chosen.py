"""A restore selected in the catalog (restore.chosen.choose, bootstrap_from_ranges) reads exactly
the records the in-memory selection (select over live(latest_files), hardlink_carriers,
build_bootstrap) reads, for random histories and every kind of selection."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from director.catalog import FileRow, JobMediaRow
from director.catalog.service import CatalogService
from director.restore.bootstrap import bootstrap_from_ranges, build_bootstrap, hardlink_carriers
from director.restore.chosen import choose, choose_in_steps
from director.restore.selection import Selection, latest_files, live, select
from protocol.attributes import FileAttributes, FileType, encode_attributes
from tests.unit.director.test_catalog_walk import _catalog, _history

SELECTIONS = [
    Selection(),
    Selection(all_files=True),
    Selection(directories=(b"/r/a",)),
    Selection(directories=(b"/r/a/b/",), files=(b"/r/x", b"/r/c")),
    Selection(files=(b"/r/a/b/z",)),
    Selection(files=(b"/r/a/f1*",)),
    Selection(files=(b"/nothing",)),
    Selection(fileregex=r"f0[0-4]|/w$"),
    Selection(directories=(b"/r/c",), fileregex=r"w"),
    Selection(directories=(b"/",)),
]


def _with_hardlinks(history: list[list[FileRow]], rng: random.Random) -> list[list[FileRow]]:
    """Turn some files into hard links to an earlier file of the same job."""
    out = []
    for rows in history:
        files = [r for r in rows if r.file_index > 0 and r.name]
        changed = []
        for original in rows:
            row = original
            earlier = [f for f in files if f.file_index < row.file_index]
            if row in files and earlier and rng.random() < 0.2:
                target = rng.choice(earlier)
                attrs = FileAttributes(
                    row.full_path,
                    FileType.HARDLINK,
                    0o644,
                    0,
                    0,
                    1,
                    0,
                    0,
                    0,
                    link_index=target.file_index,
                )
                row = FileRow(
                    row.job_id, row.path, row.name, row.file_index, encode_attributes(attrs)
                )
            changed.append(row)
        out.append(changed)
    return out


def _media(job_ids: list[int], rows: list[list[FileRow]]) -> list[JobMediaRow]:
    """Two volumes per job that share the middle file index (a file split across volumes)."""
    out = []
    for job_id, job_rows in zip(job_ids, rows, strict=True):
        last = max([r.file_index for r in job_rows] + [1])
        middle = max(last // 2, 1)
        out.append(JobMediaRow(job_id, 1, f"A-{job_id}", 1, middle, 1, 2, 10, 20, 5, job_id, 99))
        out.append(JobMediaRow(job_id, 2, f"B-{job_id}", middle, last, 1, 2, 30, 40, 5, job_id, 99))
    return out


@pytest.mark.parametrize("seed", range(8))
def test_choose_reads_what_the_in_memory_selection_reads(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    history = _with_hardlinks(_history(rng, rng.randint(1, 4)), rng)
    cat, jobs = _catalog(tmp_path, history)
    try:
        job_ids = [j.job_id for j in jobs]
        everything = [r for j in job_ids for r in cat.list_files(j)]
        files = live(latest_files([(job, cat.list_files(job.job_id)) for job in jobs]))
        media = _media(job_ids, history)
        for sel in SELECTIONS:
            picked = select(
                files,
                file=sel.files,
                directory=sel.directories,
                fileregex=sel.fileregex,
                all_files=sel.all_files,
            )
            chosen_rows = list(picked.values())
            hidden = hardlink_carriers(chosen_rows, everything)
            expected = build_bootstrap(chosen_rows, hidden, media, job_ids)
            got = choose(cat, job_ids, sel)
            assert got.files == sum(1 for r in chosen_rows if r.file_index > 0), sel
            assert set(got.hidden) == hidden, sel
            assert bootstrap_from_ranges(got.ranges, media, job_ids) == expected, sel
    finally:
        cat.close()


def test_tree_marks_choose_what_they_cover_and_a_later_unmark_wins(tmp_path: Path) -> None:
    rng = random.Random(3)
    history = _history(rng, 1)
    cat, jobs = _catalog(tmp_path, history)
    try:
        files = live(latest_files([(jobs[0], cat.list_files(1))]))
        marks = ((True, b"/r/a"), (False, b"/r/a/b"), (True, b"/r/a/b/z"))
        got = choose(cat, [1], Selection(marks=marks))
        wanted = {
            r.file_index
            for p, r in files.items()
            if ((p == b"/r/a" or p.startswith(b"/r/a/")) and not p.startswith(b"/r/a/b"))
            or p == b"/r/a/b/z"
        }
        indexes = {i for first, last in got.ranges.get(1, ()) for i in range(first, last + 1)}
        assert indexes == wanted
        assert got.files == len(wanted)
    finally:
        cat.close()


async def test_choose_in_steps_chooses_the_same_and_drops_its_table(tmp_path: Path) -> None:
    rng = random.Random(5)
    history = _with_hardlinks(_history(rng, 3), rng)
    cat, jobs = _catalog(tmp_path, history)
    db = CatalogService(lambda: cat)
    try:
        job_ids = [j.job_id for j in jobs]
        for sel in SELECTIONS:
            assert await choose_in_steps(db, job_ids, sel) == choose(cat, job_ids, sel), sel
        assert cat._query("SELECT name FROM sqlite_temp_master WHERE type='table'") == []
    finally:
        db.close()
