"""The job queue: a priority-ordered waiting list, jobq_server admission, one task per running job."""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Awaitable, Callable
from typing import Any

from director.jobs import status as st
from director.jobs.admission import Limits, admit
from director.jobs.control import JobControl

RunJob = Callable[[JobControl], Awaitable[None]]


class JobQueue:
    """Bareos jobq semantics, event-driven instead of polled: every change re-runs admission."""

    def __init__(self, limits: Callable[[], Limits], run: RunJob, log: Any) -> None:
        self._limits = limits
        self._run = run
        self.log = log
        self.waiting: list[JobControl] = []
        self.running: list[JobControl] = []
        self.jobs: dict[int, JobControl] = {}
        self._seq = 0
        self._order: dict[int, tuple[int, int]] = {}
        self._wake = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None

    def add(self, jcr: JobControl) -> None:
        """JobqAdd: insert by priority, FIFO among equals; a canceled job goes to the head."""
        self._seq += 1
        key = (jcr.priority if not jcr.canceled.is_set() else -(2**31), self._seq)
        self._order[jcr.job_id] = key
        keys = [self._order[j.job_id] for j in self.waiting]
        self.waiting.insert(bisect.bisect_right(keys, key), jcr)
        self.jobs[jcr.job_id] = jcr
        self.kick()

    def kick(self) -> None:
        """Re-evaluate the queue (a job ended, a limit changed, a job was added or canceled)."""
        self._wake.set()

    def cancel_waiting(self, jcr: JobControl) -> bool:
        """Remove a job that has not started; True when it was waiting."""
        if jcr in self.waiting:
            self.waiting.remove(jcr)
            jcr.wait = None
            jcr.set_status(st.CANCELED)
            self.kick()
            return True
        return False

    async def serve(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            stopper = tg.create_task(stop.wait())
            while not stop.is_set():
                self._admit(tg)
                waker = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait({waker, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waker.cancel()
                self._wake.clear()
            for jcr in list(self.running):
                jcr.canceled.set()

    def _admit(self, tg: asyncio.TaskGroup) -> None:
        decision = admit(
            [j.candidate() for j in self.waiting], [j.candidate() for j in self.running], self._limits()
        )
        by_id = {j.job_id: j for j in self.waiting}
        for job_id, reason in decision.waits.items():
            jcr = by_id[job_id]
            if jcr.wait != reason:
                self.log.info("job_waiting", job_id=job_id, job=jcr.unique, status=reason.status,
                              reason=reason.code, resource=reason.resource)
            jcr.wait = reason
            jcr.status = reason.status if jcr.status in st.WAITING else jcr.status
        for job_id in decision.start:
            jcr = by_id[job_id]
            self.waiting.remove(jcr)
            jcr.wait = None
            self.running.append(jcr)
            tg.create_task(self._run_one(jcr), name=f"job-{jcr.job_id}")

    async def _run_one(self, jcr: JobControl) -> None:
        try:
            await self._run(jcr)
        except Exception:  # a job task boundary: record and keep the queue alive
            self.log.exception("job_task_crashed", job_id=jcr.job_id, job=jcr.unique)
        finally:
            self.running.remove(jcr)
            jcr.done.set()
            self.kick()
