"""Catalog faults (#11): a failed COMMIT is rolled back and the connection keeps working; the job-state
write-behind keeps every status until the catalog takes it; the Director refuses new jobs meanwhile.

The disk-full cases run a real SQLite catalog on a tiny tmpfs filled with a ballast file; the cases
SQLite cannot be made to produce on demand (a COMMIT that fails and leaves the transaction open, a
ROLLBACK that fails) use a connection that injects the fault."""

from __future__ import annotations

import asyncio
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
from director.config import load_director_config
from director.console.registry import Session
from director.console.server import run_command
from director.daemon import DirectorDaemon
from director.jobs.errors import JobError
from director.jobs.persist import JobWriter
from director.jobs.request import RunRequest
from tests.support.director import director_etc

LOG_LINE = (
    "x" * 40_000
)  # more than the slack at the end of the WAL: a transaction with it needs new space


class _Log:
    """A structlog stand-in that remembers events."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def bind(self, **_kwargs: Any) -> _Log:
        return self

    def _event(self, event: str, **kwargs: Any) -> None:
        self.events.append((event, kwargs))

    info = warning = error = exception = debug = _event

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs; skipped where mounting is not allowed."""
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
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
    return catalog.create_job(
        NewJob(
            job=name,
            name="j",
            type="D",
            level=" ",
            client_id=None,
            fileset_id=None,
            pool_id=None,
            sched_time=0.0,
        )
    )


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
    full_catalog: tuple[Catalog, Path],
) -> None:
    catalog, fs = full_catalog
    job_id = new_job(catalog, "before")
    catalog.add_log(job_id, 1.0, "queued")
    ballast = fill(fs)
    statements: list[str] = []
    catalog._db.set_trace_callback(statements.append)
    for _attempt in range(3):  # every attempt fails the same way: no transaction is left open
        statements.clear()
        with pytest.raises(CatalogWriteError) as failed:
            catalog.apply_job_changes(
                {job_id: {"JobStatus": "T", "Comment": "done"}}, [(job_id, 2.0, LOG_LINE)]
            )
        # the COMMIT failed, not a statement before it (SQLite rolled back itself: no ROLLBACK ran)
        assert statements[-2:] == ["COMMIT", "PRAGMA synchronous=NORMAL"], statements
        assert str(failed.value) == (
            f"cannot write the state of 1 job(s) and 1 log line(s) in the catalog "
            f"{fs / 'catalog.db'}: database or disk is full"
        )
        assert failed.value.retriable and failed.value.operation.startswith("write the state")
        assert not catalog._db.in_transaction
    with pytest.raises(
        CatalogWriteError, match=r"cannot create the Job row for 'during' .*disk is full"
    ):
        catalog.create_job(
            NewJob(
                job="during",
                name="j",
                type="D",
                level=" ",
                client_id=None,
                fileset_id=None,
                pool_id=None,
                sched_time=0.0,
                request="r" * 40_000,
            )
        )
    row = catalog.get_job(job_id)  # reads work while the disk is full
    assert row is not None and row.status == "C"
    ballast.unlink()
    catalog.apply_job_changes(
        {job_id: {"JobStatus": "T", "Comment": "done"}}, [(job_id, 2.0, "ended")]
    )
    row = catalog.get_job(job_id)
    assert row is not None and row.status == "T" and row.comment == "done"
    assert [text for _, text in catalog.job_log(job_id)] == [
        "queued",
        "ended",
    ]  # nothing of the failed attempts
    assert new_job(catalog, "after") > job_id


def test_file_rows_after_a_failed_batch_do_not_point_at_rolled_back_paths(
    full_catalog: tuple[Catalog, Path],
) -> None:
    """insert_files caches PathIds; a rolled-back batch must not leave ids of Path rows that are gone."""
    catalog, fs = full_catalog
    job_id = new_job(catalog, "backup")
    rows = [
        FileRow(
            job_id=job_id,
            path=f"/data/dir-{n}/".encode(),
            name=b"f",
            file_index=n + 1,
            lstat=b"l" * 200,
            digest=None,
        )
        for n in range(300)
    ]
    ballast = fill(fs)
    with pytest.raises(
        CatalogWriteError, match=r"cannot insert 300 File row\(s\) of JobId \d+ .*disk is full"
    ):
        catalog.insert_files(job_id, rows)
    ballast.unlink()
    catalog.insert_files(
        job_id, rows
    )  # with stale PathIds this fails on the foreign key, or links wrong rows
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
    faulty: tuple[Catalog, _FaultyConnection],
) -> None:
    catalog, connection = faulty
    job_id = new_job(catalog, "j")
    connection.fail["COMMIT"] = 1
    with pytest.raises(
        CatalogWriteError, match=rf"cannot update JobId {job_id} in the catalog .*: disk I/O error"
    ):
        catalog.update_job(job_id, JobStatus="R")
    assert not connection.in_transaction
    row = catalog.get_job(job_id)
    assert row is not None and row.status == "C"  # rolled back
    catalog.update_job(job_id, JobStatus="T")  # the next BEGIN works
    row = catalog.get_job(job_id)
    assert row is not None and row.status == "T"


def test_a_rollback_that_fails_neither_hides_the_error_nor_blocks_the_next_write(
    faulty: tuple[Catalog, _FaultyConnection],
) -> None:
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
            "PRAGMA synchronous=FULL",
            "BEGIN IMMEDIATE",
            "COMMIT",
            "PRAGMA synchronous=NORMAL",
        ], final
    statements.clear()
    catalog.update_job(job_id, JobStatus="T", EndTime=5.0)  # the direct path (copy jobs) too
    assert statements[0] == "PRAGMA synchronous=FULL"
    assert catalog._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # back to NORMAL
    catalog.close()


# -- the write-behind -------------------------------------------------------------------------


class FakeTime:
    """A clock that jumps by each backoff; the writer's sleep holds while the catalog is declared
    unwritable, until the test has freed the space (`resume`)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.delays: list[float] = []
        self.writer: JobWriter | None = None
        self.blocked = asyncio.Event()
        self.resume = asyncio.Event()

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)
        self.now += delay
        if self.writer is not None and self.writer.unwritable is not None:
            self.blocked.set()
            await self.resume.wait()
        await asyncio.sleep(0)


def _writer(
    catalog: Catalog, time: FakeTime, log: _Log, states: list[str | None], **limits: Any
) -> JobWriter:
    async def apply(updates: dict[int, dict[str, Any]], logs: list[tuple[int, float, str]]) -> None:
        await asyncio.to_thread(catalog.apply_job_changes, updates, logs)

    writer = JobWriter(apply, log, on_writable=states.append, **limits)
    writer.clock, writer.sleep = time.clock, time.sleep
    time.writer = writer
    return writer


async def test_no_status_is_lost_while_the_disk_is_full(full_catalog: tuple[Catalog, Path]) -> None:
    catalog, fs = full_catalog
    ids = {status: new_job(catalog, f"job-{status}") for status in ("T", "E", "A", "W", "R")}
    time, log = FakeTime(), _Log()
    states: list[str | None] = []
    writer = _writer(catalog, time, log, states)
    ballast = fill(fs)
    for status, job_id in ids.items():
        writer.job(job_id, JobStatus="R", StartTime=1.0)
        writer.add_log(job_id, 1.0, f"{status} started " + LOG_LINE)
    ends = [
        asyncio.create_task(
            writer.update_job(job_id, JobStatus=status, EndTime=2.0, Comment=f"ended {status}")
        )
        for status, job_id in ids.items()
        if status != "R"
    ]
    await asyncio.wait_for(time.blocked.wait(), 30)
    # refused three times in a row (backoff 0.5 s, 1 s, 2 s on the injected clock): not writable
    assert time.delays == [0.5, 1.0, 2.0]
    assert writer.unwritable is not None and "database or disk is full" in writer.unwritable
    assert states == [writer.unwritable] and "catalog_unwritable" in log.names()
    assert not any(task.done() for task in ends)  # nobody was told their final status is written
    writer.job(
        ids["R"], JobFiles=7
    )  # state keeps coming in while the catalog is full: the newest wins
    writer.job(ids["R"], JobFiles=9)
    ballast.unlink()
    time.resume.set()
    await asyncio.wait_for(asyncio.gather(*ends), 30)
    await asyncio.wait_for(writer.flush(), 30)
    assert writer.unwritable is None and states[-1] is None and writer.pending == 0
    for status, job_id in ids.items():
        row = catalog.get_job(job_id)
        assert row is not None
        if status == "R":
            assert row.status == "R" and row.files == 9
        else:
            assert (row.status, row.end_time, row.comment) == (status, 2.0, f"ended {status}")
        assert [text[:9] for _, text in catalog.job_log(job_id)] == [f"{status} started"]


async def test_unwritable_after_a_time_too_and_the_backoff_is_capped(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "catalog.db")
    catalog.migrate()
    job_id = new_job(catalog, "j")
    time, log = FakeTime(), _Log()
    states: list[str | None] = []
    refusals = [0]

    async def apply(updates: dict[int, dict[str, Any]], logs: list[tuple[int, float, str]]) -> None:
        if refusals[0] < 8:
            refusals[0] += 1
            raise CatalogWriteError(
                "write the state", catalog.path, "database is locked", retriable=True
            )
        catalog.apply_job_changes(updates, logs)

    writer = JobWriter(
        apply, log, on_writable=states.append, unwritable_attempts=100, unwritable_after=10.0
    )
    writer.clock, writer.sleep = time.clock, time.sleep
    time.resume.set()
    await asyncio.wait_for(writer.update_job(job_id, JobStatus="T"), 30)
    assert time.delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]
    # failures at 0, 0.5, 1.5, 3.5, 7.5, 12.5 s: the sixth is past UNWRITABLE_AFTER
    assert [name for name in log.names() if name.startswith("catalog_")] == [
        "catalog_unwritable",
        "catalog_writable",
    ]
    assert next(e for n, e in log.events if n == "catalog_unwritable")["attempts"] == 6
    assert states == [
        "cannot write the state in the catalog " + str(catalog.path) + ": database is locked",
        None,
    ]
    row = catalog.get_job(job_id)
    assert row is not None and row.status == "T"
    catalog.close()


async def test_a_change_the_catalog_can_never_take_costs_only_its_own_job(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "catalog.db")
    catalog.migrate()
    good, bad = new_job(catalog, "good"), new_job(catalog, "bad")
    log = _Log()

    async def apply(updates: dict[int, dict[str, Any]], logs: list[tuple[int, float, str]]) -> None:
        catalog.apply_job_changes(updates, logs)

    writer = JobWriter(apply, log)
    writer.job(good, JobStatus="T")
    writer.add_log(good, 1.0, "good ended")
    writer.job(bad, Comment=object())  # a value SQLite cannot store
    with pytest.raises(CatalogWriteError, match=r"binding parameter"):
        await writer.flush()
    assert "job_state_batch_split" in log.names()
    assert next(e for n, e in log.events if n == "job_state_dropped")["jobids"] == [bad]
    row = catalog.get_job(good)
    assert row is not None and row.status == "T" and catalog.job_log(good) == [(1.0, "good ended")]
    await writer.update_job(bad, JobStatus="E")  # the writer goes on
    row = catalog.get_job(bad)
    assert row is not None and row.status == "E"
    catalog.close()


async def test_a_stopping_director_gives_up_on_an_unwritable_catalog(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "catalog.db")
    catalog.migrate()
    job_id = new_job(catalog, "j")
    time, log = FakeTime(), _Log()
    time.resume.set()

    async def apply(updates: dict[int, dict[str, Any]], logs: list[tuple[int, float, str]]) -> None:
        raise CatalogWriteError(
            "write the state", catalog.path, "database or disk is full", retriable=True
        )

    writer = JobWriter(apply, log)
    writer.clock, writer.sleep = time.clock, time.sleep
    writer.stop_retrying_after(30.0)
    with pytest.raises(CatalogWriteError, match="disk is full"):
        await asyncio.wait_for(writer.update_job(job_id, JobStatus="T"), 30)
    assert sum(time.delays) >= 30.0
    assert next(e for n, e in log.events if n == "job_state_not_written")["jobids"] == [job_id]
    catalog.close()


# -- the Director -----------------------------------------------------------------------------


@pytest.fixture
async def director(tiny_fs: Path, tmp_path: Path) -> Any:
    etc = director_etc(tmp_path / "inst", tiny_fs / "catalog.db")
    (etc / "job" / "quick.conf").write_text(
        "Job {\n  Name = quick\n  Type = Admin\n  Messages = Standard\n}\n"
    )
    daemon = DirectorDaemon(etc, load_director_config(etc), _Log())
    await daemon.db.open()
    assert daemon.db.backend.path == tiny_fs / "catalog.db"
    yield daemon
    daemon.db.close()


async def test_the_director_refuses_new_jobs_while_the_catalog_is_not_writable(
    director: DirectorDaemon, tiny_fs: Path
) -> None:
    session = Session(console="admin", acl=lambda _kind, _name: True, director=director, api=True)
    log = _Log()
    queued = await run_command(session, "run job=quick yes", log)
    assert queued.ok, queued.text
    first = queued.data["run"]["jobid"]
    time = FakeTime()
    writer = director.engine.writer
    writer.clock, writer.sleep = time.clock, time.sleep
    time.writer = writer
    await writer.flush()
    ballast = fill(tiny_fs)
    ending = asyncio.create_task(
        writer.update_job(first, JobStatus="T", EndTime=2.0, Comment=LOG_LINE[:250])
    )
    director.engine.writer.add_log(first, 2.0, LOG_LINE)
    await asyncio.wait_for(time.blocked.wait(), 30)

    refused = await run_command(session, "run job=quick yes", log)
    path = tiny_fs / "catalog.db"
    expected = (
        "the catalog is not writable: cannot write the state of 1 job(s) and 1 log line(s) in the catalog "
        f"{path}: database or disk is full; new jobs are refused until it is"
    )
    assert not refused.ok and refused.text == expected
    status = await run_command(session, "status dir", log)
    assert f"Catalog: {expected}" in status.text.splitlines()
    assert status.data["catalog"] == {"writable": False, "error": expected}
    with pytest.raises(
        JobError, match=r"^the catalog is not writable: "
    ):  # as when a schedule fires
        await director.submit(RunRequest(job="quick", params={"scheduled": "Nightly"}))
    messages = [line.text for line in director.messages.drain()]
    assert any(text.startswith(expected) for text in messages), messages
    assert f"Job quick (schedule Nightly) not run: {expected}" in messages
    assert first in director.queue.jobs  # the queued job is still there

    ballast.unlink()
    time.resume.set()
    await asyncio.wait_for(ending, 30)
    assert director.engine.refusal() is None
    assert "the catalog is writable again; new jobs are accepted" in [
        line.text for line in director.messages.drain()
    ]
    status = await run_command(session, "status dir", log)
    assert status.data["catalog"] == {"writable": True, "error": None}
    assert not any(line.startswith("Catalog:") for line in status.text.splitlines())
    again = await run_command(session, "run job=quick yes", log)
    assert again.ok and again.data["run"]["jobid"] > first
    row = await director.db.get_job(first)
    assert row.status == "T"
