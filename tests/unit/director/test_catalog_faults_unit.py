"""Catalog faults (#11): a failed COMMIT is rolled back and the connection keeps working.

The disk-full cases run a real SQLite catalog on a tiny tmpfs filled with a ballast file; the cases
SQLite cannot be made to produce on demand (a COMMIT that fails and leaves the transaction open, a
ROLLBACK that fails) use a connection that injects the fault."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from director.catalog import (
    Catalog,
    CatalogError,
    CatalogWriteError,
    DuplicateJobName,
    FileRow,
    NewJob,
)

LOG_LINE = "x" * 40_000  # more than the slack at the end of the WAL: a transaction with it needs new space


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs; skipped where mounting is not allowed."""
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill up (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Fill the filesystem of `directory` with a ballast file, to the last byte; return it."""
    ballast = directory / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        chunk = 1 << 20
        while chunk:
            try:
                os.write(fd, bytes(chunk))
            except OSError:
                chunk //= 2
    finally:
        os.close(fd)
    assert os.statvfs(directory).f_bavail == 0
    return ballast


def new_job(catalog: Catalog, name: str) -> int:
    return catalog.create_job(NewJob(job=name, name="j", type="D", level=" ", client_id=None, fileset_id=None,
                                     pool_id=None, sched_time=0.0))


@pytest.fixture
def full_catalog(tiny_fs: Path) -> Iterator[tuple[Catalog, Path]]:
    catalog = Catalog(tiny_fs / "catalog.db")
    catalog.migrate()
    try:
        yield catalog, tiny_fs
    finally:
        catalog.close()


# -- the catalog ------------------------------------------------------------------------------


def test_a_commit_on_a_full_disk_raises_and_the_catalog_works_once_space_is_back(
        full_catalog: tuple[Catalog, Path]) -> None:
    catalog, fs = full_catalog
    job_id = new_job(catalog, "before")
    catalog.add_log(job_id, 1.0, "queued")
    ballast = fill(fs)
    statements: list[str] = []
    catalog._db.set_trace_callback(statements.append)
    for _attempt in range(3):  # every attempt fails the same way: no transaction is left open
        statements.clear()
        with pytest.raises(CatalogWriteError) as failed:
            catalog.apply_job_changes({job_id: {"JobStatus": "T", "Comment": "done"}}, [(job_id, 2.0, LOG_LINE)])
        # the COMMIT failed, not a statement before it (SQLite rolled back itself: no ROLLBACK ran)
        assert statements[-2:] == ["COMMIT", "PRAGMA synchronous=NORMAL"], statements
        assert str(failed.value) == (f"cannot write the state of 1 job(s) and 1 log line(s) in the catalog "
                                     f"{fs / 'catalog.db'}: database or disk is full")
        assert failed.value.retriable and failed.value.operation.startswith("write the state")
        assert not catalog._db.in_transaction
    with pytest.raises(CatalogWriteError, match=r"cannot create the Job row for 'during' .*disk is full"):
        catalog.create_job(NewJob(job="during", name="j", type="D", level=" ", client_id=None, fileset_id=None,
                                  pool_id=None, sched_time=0.0, request="r" * 40_000))
    row = catalog.get_job(job_id)  # reads work while the disk is full
    assert row is not None and row.status == "C"
    ballast.unlink()
    catalog.apply_job_changes({job_id: {"JobStatus": "T", "Comment": "done"}}, [(job_id, 2.0, "ended")])
    row = catalog.get_job(job_id)
    assert row is not None and row.status == "T" and row.comment == "done"
    assert [text for _, text in catalog.job_log(job_id)] == ["queued", "ended"]  # nothing of the failed attempts
    assert new_job(catalog, "after") > job_id


def test_file_rows_after_a_failed_batch_do_not_point_at_rolled_back_paths(full_catalog: tuple[Catalog, Path]) -> None:
    """insert_files caches PathIds; a rolled-back batch must not leave ids of Path rows that are gone."""
    catalog, fs = full_catalog
    job_id = new_job(catalog, "backup")
    rows = [FileRow(job_id=job_id, path=f"/data/dir-{n}/".encode(), name=b"f", file_index=n + 1, lstat=b"l" * 200,
                    digest=None) for n in range(300)]
    ballast = fill(fs)
    with pytest.raises(CatalogWriteError, match=r"cannot insert 300 File row\(s\) of JobId \d+ .*disk is full"):
        catalog.insert_files(job_id, rows)
    ballast.unlink()
    catalog.insert_files(job_id, rows)  # with stale PathIds this fails on the foreign key, or links wrong rows
    assert [r.path for r in catalog.list_files(job_id)] == [r.path for r in rows]


class _FaultyConnection:
    """A sqlite3 connection whose COMMIT or ROLLBACK fails (without running) while `fail` says so."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self.fail: dict[str, int] = {}

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if self.fail.get(sql, 0) > 0:
            self.fail[sql] -= 1
            error = sqlite3.OperationalError("disk I/O error")
            error.sqlite_errorcode = sqlite3.SQLITE_IOERR  # as SQLite sets it
            raise error
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[tuple[Catalog, _FaultyConnection]]:
    catalog = Catalog(tmp_path / "catalog.db")
    catalog.migrate()
    connection = _FaultyConnection(catalog._db)
    catalog._db = connection  # type: ignore[assignment]  # the fault injector stands in for the connection
    try:
        yield catalog, connection
    finally:
        catalog.close()


def test_a_commit_that_fails_with_the_transaction_open_is_rolled_back(
        faulty: tuple[Catalog, _FaultyConnection]) -> None:
    catalog, connection = faulty
    job_id = new_job(catalog, "j")
    connection.fail["COMMIT"] = 1
    with pytest.raises(CatalogWriteError, match=rf"cannot update JobId {job_id} in the catalog .*: disk I/O error"):
        catalog.update_job(job_id, JobStatus="R")
    assert not connection.in_transaction
    row = catalog.get_job(job_id)
    assert row is not None and row.status == "C"  # rolled back
    catalog.update_job(job_id, JobStatus="T")  # the next BEGIN works
    row = catalog.get_job(job_id)
    assert row is not None and row.status == "T"


def test_a_rollback_that_fails_neither_hides_the_error_nor_blocks_the_next_write(
        faulty: tuple[Catalog, _FaultyConnection]) -> None:
    catalog, connection = faulty
    job_id = new_job(catalog, "j")
    connection.fail.update({"COMMIT": 1, "ROLLBACK": 1})
    with pytest.raises(CatalogWriteError, match="disk I/O error"):
        catalog.update_job(job_id, JobStatus="R")
    assert connection.in_transaction  # the ROLLBACK failed: the transaction is still open ...
    catalog.update_job(job_id, JobStatus="T")  # ... and the next write rolls it back first
    row = catalog.get_job(job_id)
    assert row is not None and row.status == "T" and not connection.in_transaction


def test_errors_that_will_not_pass_are_not_retriable(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "catalog.db")
    catalog.migrate()
    job_id = new_job(catalog, "j")
    with pytest.raises(CatalogWriteError) as failed:
        catalog.update_job(job_id, Comment=object())
    assert not failed.value.retriable
    with pytest.raises(DuplicateJobName):
        new_job(catalog, "j")
    with pytest.raises(CatalogError, match="unknown Job column"):
        catalog.apply_job_changes({job_id: {"Nope": 1}}, [])
    catalog.update_job(job_id, JobStatus="R")
    catalog.close()


def test_a_final_status_is_committed_with_a_full_sync(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "catalog.db")
    catalog.migrate()
    job_id = new_job(catalog, "j")
    statements: list[str] = []
    catalog._db.set_trace_callback(statements.append)
    catalog.apply_job_changes({job_id: {"JobStatus": "R"}}, [(job_id, 1.0, "started")])
    assert not any(s.startswith("PRAGMA synchronous") for s in statements)
    for final in ("T", "W", "E", "f", "A"):
        statements.clear()
        catalog.apply_job_changes({job_id: {"JobStatus": final}}, [])
        assert [s for s in statements if not s.startswith("UPDATE")] == [
            "PRAGMA synchronous=FULL", "BEGIN IMMEDIATE", "COMMIT", "PRAGMA synchronous=NORMAL"], final
    statements.clear()
    catalog.update_job(job_id, JobStatus="T", EndTime=5.0)  # the direct path (copy jobs) too
    assert statements[0] == "PRAGMA synchronous=FULL"
    assert catalog._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # back to NORMAL
    catalog.close()
