"""Duplicate control (Bareos allow_duplicate_job) through the engine's gate, with a fake Director."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from director.events import EventBus
from director.jobs import status as st
from director.jobs.admission import Limits
from director.jobs.control import JobControl
from director.jobs.engine import JobEngine


class _Log:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


class FakeDirector:
    name = "test-dir"

    def __init__(self) -> None:
        self.log = _Log()
        self.events = EventBus()
        self.lines: list[tuple[int, str]] = []

    def job_limits(self) -> Limits:
        return Limits(director=10)

    def joblog(self, jcr: JobControl, level: str, text: str) -> None:
        self.lines.append((jcr.job_id, text))

    async def catalog_call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return None


def resource(**policy: bool) -> SimpleNamespace:
    base = {
        "allow_duplicate_jobs": False,
        "cancel_lower_level_duplicates": False,
        "cancel_queued_duplicates": False,
        "cancel_running_duplicates": False,
    }
    base.update(policy)
    return SimpleNamespace(name="nightly", run_on_status_change=(), **base)


def job(
    engine: JobEngine, job_id: int, res: SimpleNamespace, level: str = "I", running: bool = False
) -> JobControl:
    jcr = JobControl(
        job_id=job_id,
        unique=f"nightly.{job_id}",
        name="nightly",
        job_type="B",
        level=level,
        resource=res,
        client="c",
        fileset="f",
        pool="p",
        storage="s",
        priority=10,
        allow_mixed=False,
        sched_time=0.0,
    )
    engine.transitions.attach(jcr)
    engine.queue.track(jcr)
    if running:
        jcr.set_status(st.RUNNING)
        engine.queue._running.append(jcr)  # as if admitted: its task is not part of these tests
    else:
        engine.queue.add(jcr)
    return jcr


def run(scenario: Any) -> None:
    async def main() -> None:
        engine = JobEngine(FakeDirector())  # type: ignore[arg-type]
        await scenario(engine)
        await asyncio.sleep(0.05)  # let spawned endings finish

    asyncio.run(main())


def test_allowed_duplicates_are_left_alone() -> None:
    async def scenario(engine: JobEngine) -> None:
        res = resource(allow_duplicate_jobs=True)
        job(engine, 1, res, running=True)
        new = job(engine, 2, res)
        assert engine._gate(new) is None and not new.canceled.is_set()

    run(scenario)


def test_by_default_the_newer_duplicate_is_canceled() -> None:
    async def scenario(engine: JobEngine) -> None:
        res = resource()
        old = job(engine, 1, res, running=True)
        new = job(engine, 2, res)
        assert engine._gate(new) is None
        assert new.canceled.is_set() and not old.canceled.is_set()
        assert "duplicate of JobId 1, which is running" in (new.cancel_reason or "")

    run(scenario)


def test_a_newer_queued_duplicate_is_judged_on_its_own_turn() -> None:
    async def scenario(engine: JobEngine) -> None:
        res = resource()
        first = job(engine, 1, res)
        job(engine, 2, res)
        assert engine._gate(first) is None and not first.canceled.is_set()

    run(scenario)


def test_cancel_queued_duplicates() -> None:
    async def scenario(engine: JobEngine) -> None:
        res = resource(cancel_queued_duplicates=True)
        queued = job(engine, 1, res)
        new = job(engine, 2, res)
        assert engine._gate(new) is None
        assert queued.canceled.is_set() and not new.canceled.is_set()
        assert "Cancel Queued Duplicates" in (queued.cancel_reason or "")

    run(scenario)


def test_cancel_running_duplicates_waits_for_the_old_one_to_stop() -> None:
    async def scenario(engine: JobEngine) -> None:
        res = resource(cancel_running_duplicates=True)
        old = job(engine, 1, res, running=True)
        new = job(engine, 2, res)
        reason = engine._gate(new)
        assert old.canceled.is_set() and not new.canceled.is_set()
        assert (
            reason is not None
            and reason.code == "duplicate_policy"
            and "jobid=1" in reason.resource
        )

    run(scenario)


def test_cancel_lower_level_duplicates_keeps_the_higher_level() -> None:
    async def scenario(engine: JobEngine) -> None:
        res = resource(cancel_lower_level_duplicates=True)
        incremental = job(engine, 1, res, level="I", running=True)
        full = job(engine, 2, res, level="F")
        assert engine._gate(full) is not None  # waits for the canceled Incremental to stop
        assert incremental.canceled.is_set() and not full.canceled.is_set()
        differential = job(engine, 3, res, level="D")
        assert engine._gate(differential) is None
        assert differential.canceled.is_set()  # a Full is queued ahead: the lower level goes

    run(scenario)
