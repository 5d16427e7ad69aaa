"""Walking a chain's newest live rows a directory at a time (director.catalog.walk) gives exactly
what the in-memory reference (selection.latest_files + live over every row) gives."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from director.catalog import Catalog, FileRow, JobRow, NewJob
from director.catalog.walk import ChainReader, ancestors, file_key
from director.jobs.attributes import split_path
from director.restore.selection import latest_files, live
from protocol.attributes import FileAttributes, FileType, encode_attributes

DIRS = [b"/r", b"/r/a", b"/r/a/b", b"/r/c", b"/r/a/b/deep"]
FILES = [b"/r/x", b"/r/a/y", b"/r/a/b/z", b"/r/c/w", b"/r/a/b/deep/v", b"/r/c/b"]
FILES += [b"/r/a/f%02d" % n for n in range(25)]  # one directory spans several pages


def _row(job: int, path: bytes, index: int, kind: FileType) -> FileRow:
    attrs = FileAttributes(path, kind, 0o644, 0, 0, index, 0, index, 0)
    head, name = split_path(path, kind == FileType.DIRECTORY and index != 0)
    return FileRow(job, head, name, index, encode_attributes(attrs))


def _history(rng: random.Random, jobs: int) -> list[list[FileRow]]:
    """Random rows per job: each path present (now and then with the other kind), deleted (a
    row with FileIndex 0, as the File Daemon sends for a vanished path) or absent."""
    out = []
    for job in range(1, jobs + 1):
        rows: list[FileRow] = []
        index = 0
        for path in DIRS + FILES:
            roll = rng.random()
            if job > 1 and roll < 0.45:
                continue
            if job > 1 and roll < 0.6:
                rows.append(_row(job, path, 0, FileType.REGULAR))
                continue
            kind = FileType.DIRECTORY if path in DIRS else FileType.REGULAR
            if rng.random() < 0.08:  # a file where a directory was, or the other way round
                kind = FileType.REGULAR if kind == FileType.DIRECTORY else FileType.DIRECTORY
            index += 1
            rows.append(_row(job, path, index, kind))
        out.append(rows)
    return out


def _catalog(tmp_path: Path, history: list[list[FileRow]]) -> tuple[Catalog, list[JobRow]]:
    cat = Catalog(tmp_path / "c.db")
    cat.migrate()
    client, fs = cat.ensure_client("fd"), cat.ensure_fileset("fs", "x")
    jobs = []
    for n, rows in enumerate(history, start=1):
        job_id = cat.create_job(
            NewJob(f"j.{n}", "j", "B", "F" if n == 1 else "I", client, fs, None, n)
        )
        assert job_id == n
        cat.insert_files(job_id, rows)
        job = cat.get_job(job_id)
        assert job is not None
        jobs.append(job)
    return cat, jobs


def _walked(reader: ChainReader, top: bytes = b"/") -> dict[bytes, FileRow]:
    out: dict[bytes, FileRow] = {}
    for batch in reader.walk(top, batch=7):
        for row in batch:
            assert row.full_path not in out, row
            out[row.full_path] = row
    return out


@pytest.mark.parametrize("seed", range(12))
def test_walk_equals_the_in_memory_reference(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    history = _history(rng, rng.randint(1, 5))
    cat, jobs = _catalog(tmp_path, history)
    try:
        chain = [j.job_id for j in jobs]
        expected = live(latest_files([(job, cat.list_files(job.job_id)) for job in jobs]))
        for reader in (
            ChainReader(cat._query, chain, page=1),  # the smallest page: every boundary
            ChainReader(cat._query, chain, max_arms=1),  # long chains: one sorted statement
            cat.chain_reader(chain),
        ):
            assert _walked(reader) == expected
            for top in (b"/r/a", b"/r/a/b", b"/r/c/w", b"/nothing"):
                under = {p: r for p, r in expected.items() if p == top or p.startswith(top + b"/")}
                assert _walked(reader, top) == under, top
            for path in DIRS + FILES:
                assert reader.live(path) == expected.get(path), path
    finally:
        cat.close()


def test_walk_of_no_jobs_and_a_single_job(tmp_path: Path) -> None:
    history = [[_row(1, b"/r", 1, FileType.DIRECTORY), _row(1, b"/r/x", 2, FileType.REGULAR)]]
    cat, _jobs = _catalog(tmp_path, history)
    try:
        assert list(cat.walk_chain([])) == []
        (batch,) = list(cat.walk_chain([1]))
        assert sorted(r.full_path for r in batch) == [b"/r", b"/r/x"]
        assert list(cat.walk_chain([1], keep=lambda r: r.name == b"x")) == [[history[0][1]]]
    finally:
        cat.close()


def test_path_helpers() -> None:
    assert ancestors(b"/a/b/c") == [b"/a/b", b"/a", b"/"]
    assert ancestors(b"/") == []
    assert file_key(b"/a/b") == (b"/a/", b"b")
    assert file_key(b"name") == (b"/", b"name")
