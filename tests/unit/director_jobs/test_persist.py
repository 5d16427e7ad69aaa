"""The write-behind of job state, against a real SQLite catalog; and run requests that survive a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from director.catalog import Catalog, NewJob
from director.jobs.persist import JobWriter
from director.jobs.request import RunRequest, dumps, loads
from protocol.jobs import BootstrapSpec


class _Log:
    def _ignore(self, *args: Any, **kwargs: Any) -> None:
        pass

    exception = error = warning = _ignore


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    cat = Catalog(tmp_path / "c.db")
    cat.migrate()
    return cat


def _job(catalog: Catalog, name: str) -> int:
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


def test_changes_coalesce_into_few_transactions_in_order(catalog: Catalog) -> None:
    ids = [_job(catalog, f"j{n}") for n in range(50)]

    async def scenario() -> JobWriter:
        calls: list[int] = []

        async def apply(
            updates: dict[int, dict[str, Any]], logs: list[tuple[int, float, str]]
        ) -> None:
            calls.append(len(updates))
            await asyncio.to_thread(catalog.apply_job_changes, updates, logs)

        writer = JobWriter(apply, _Log())
        for job_id in ids:
            writer.job(job_id, JobStatus="d", WaitReason="max_director_jobs limit=1")
            writer.add_log(job_id, 1.0, "queued")
        for job_id in ids:
            writer.job(job_id, JobStatus="R")
        await writer.update_job(ids[0], JobStatus="T", Comment="done")
        assert writer.batches <= 3, calls
        return writer

    asyncio.run(scenario())
    rows = {j.job_id: j for j in catalog.list_jobs()}
    assert rows[ids[0]].status == "T" and rows[ids[0]].comment == "done"
    assert all(
        rows[i].status == "R" and rows[i].wait_reason == "max_director_jobs limit=1"
        for i in ids[1:]
    )
    assert len(catalog.job_log(ids[5])) == 1


def test_a_failed_write_reaches_the_waiting_caller(catalog: Catalog) -> None:
    job_id = _job(catalog, "x")

    async def scenario() -> None:
        async def apply(
            updates: dict[int, dict[str, Any]], logs: list[tuple[int, float, str]]
        ) -> None:
            catalog.apply_job_changes(updates, logs)

        writer = JobWriter(apply, _Log(), retry_delay=0.001)
        with pytest.raises(Exception, match="unknown Job column"):
            await writer.update_job(job_id, NoSuchColumn=1)
        await writer.update_job(job_id, JobStatus="E")  # the writer keeps working

    asyncio.run(scenario())
    assert catalog.get_job(job_id).status == "E"  # type: ignore[union-attr]


def test_unfinished_jobs_carry_their_request(catalog: Catalog) -> None:
    req = RunRequest(job="backup", level="Full", priority=5, when=123.0, retry=1, retry_of=7)
    job_id = catalog.create_job(
        NewJob(
            job="b.1",
            name="backup",
            type="B",
            level="F",
            client_id=None,
            fileset_id=None,
            pool_id=None,
            sched_time=123.0,
            request=dumps(req),
            retry=1,
        )
    )
    catalog.update_job(_job(catalog, "done"), JobStatus="T")
    ((row, request, _wait, retry),) = catalog.unfinished_jobs()
    assert row.job_id == job_id and retry == 1
    assert request is not None and loads(request) == req


def test_a_restore_request_round_trips_with_bytes_and_bootstrap() -> None:
    spec = BootstrapSpec(
        volume_name="Vol-1", session_id=3, session_time=99, file_indexes=((1, 4), (9, 9))
    )
    req = RunRequest(
        job="restore",
        client="fd",
        params={
            "where": b"/tmp/r\xff",
            "bootstrap": [spec],
            "hidden_indexes": [(1, 2)],
            "expected_files": 5,
        },
    )
    back = loads(dumps(req))
    assert back.params["where"] == b"/tmp/r\xff"
    assert back.params["bootstrap"] == [spec]
    assert back.params["expected_files"] == 5


def test_an_unkeepable_request_says_what_it_cannot_keep() -> None:
    with pytest.raises(TypeError, match="object"):
        dumps(RunRequest(job="x", params={"thing": object()}))


def test_a_batch_the_catalog_refused_once_is_written_on_retry(catalog: Catalog) -> None:
    job_id = _job(catalog, "y")

    async def scenario() -> None:
        failures = [1]

        async def apply(
            updates: dict[int, dict[str, Any]], logs: list[tuple[int, float, str]]
        ) -> None:
            if failures:
                failures.pop()
                raise OSError("database is locked")
            catalog.apply_job_changes(updates, logs)

        writer = JobWriter(apply, _Log(), retry_delay=0.001)
        writer.job(job_id, JobStatus="R")
        writer.add_log(job_id, 1.0, "started")
        await writer.update_job(job_id, JobFiles=5)

    asyncio.run(scenario())
    row = catalog.get_job(job_id)
    assert row is not None and row.status == "R" and row.files == 5
    assert len(catalog.job_log(job_id)) == 1


def test_a_restore_plan_reads_its_sources_and_privileged_choice() -> None:
    from director.jobs.plans import RestorePlan

    plan = RestorePlan.from_params(
        {
            "where": b"/r",
            "source_jobs": [3, 4],
            "privileged_content": True,
            "hidden_indexes": [[3, 7]],
        }
    )
    assert plan.source_jobs == (3, 4) and plan.privileged_content is True
    assert plan.hidden_indexes == ((3, 7),)
    assert RestorePlan.from_params({"where": b"/r"}).privileged_content is False
