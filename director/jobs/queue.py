"""The job queue: a priority-ordered waiting list, jobq_server admission, one task per running job."""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from types import MappingProxyType

from common.logging import Log
from director.jobs import status as st
from director.jobs.admission import Candidate, Limits, WaitReason, admit
from director.jobs.control import JobControl

RunJob = Callable[[JobControl], Awaitable[None]]
Gate = Callable[[JobControl], WaitReason | None]


class JobQueue:
    """Bareos jobq semantics, event-driven instead of polled: every change re-runs admission."""

    def __init__(
        self,
        limits: Callable[[], Limits],
        run: RunJob,
        log: Log,
        gate: Gate | None = None,
        on_tail: Callable[[list[JobControl], WaitReason], None] | None = None,
    ) -> None:
        self._limits = limits
        self._run = run
        self._gate = gate
        self._on_tail = on_tail
        self.log = log
        # The queue alone changes these; everyone else reads them through the views below.
        self._waiting: list[JobControl] = []
        self._running: list[JobControl] = []
        self._jobs: dict[int, JobControl] = {}  # every job the Director holds in memory, by JobId
        self.jobs: Mapping[int, JobControl] = MappingProxyType(self._jobs)
        self._waiting_ids: set[int] = set()
        self._seq = 0
        self._wake = asyncio.Event()
        self._specific: set[int] = set()  # waiting jobs that got a reason of their own last time
        self._tail: WaitReason | None = None
        self._unmarked: set[int] = set()  # added since the last admission: no reason yet
        self.admissions = 0

    @property
    def waiting(self) -> Sequence[JobControl]:
        """Jobs waiting to start, in the order they will be considered (read-only)."""
        return tuple(self._waiting)

    @property
    def running(self) -> Sequence[JobControl]:
        """Jobs whose task runs (read-only)."""
        return tuple(self._running)

    def is_running(self, jcr: JobControl) -> bool:
        return jcr in self._running

    def track(self, jcr: JobControl) -> None:
        """Hold a job the Director knows of (scheduled, queued or running) until it ends."""
        self._jobs[jcr.job_id] = jcr

    def forget(self, jcr: JobControl) -> None:
        """A job that never started has ended: let it go."""
        if self._jobs.get(jcr.job_id) is jcr:
            del self._jobs[jcr.job_id]
        self.kick()

    def add(self, jcr: JobControl) -> None:
        """JobqAdd: insert by priority, FIFO among equals; a canceled job goes to the head."""
        self._seq += 1
        jcr.queue_order = (jcr.priority if not jcr.canceled.is_set() else -(2**31), self._seq)
        index = bisect.bisect_right(self._waiting, jcr.queue_order, key=lambda j: j.queue_order)
        self._waiting.insert(index, jcr)
        self._waiting_ids.add(jcr.job_id)
        self._jobs[jcr.job_id] = jcr
        self._unmarked.add(jcr.job_id)
        self.kick()

    def kick(self) -> None:
        """Re-evaluate the queue (a job ended, a limit changed, a job was added or canceled)."""
        self._wake.set()

    def remove_waiting(self, jcr: JobControl) -> bool:
        """Take a job that has not started out of the queue; True when it was waiting."""
        if jcr.job_id in self._waiting_ids:
            self._waiting.remove(jcr)
            self._waiting_ids.discard(jcr.job_id)
            self._unmarked.discard(jcr.job_id)
            jcr.wait = None
            self.kick()
            return True
        return False

    async def serve(
        self, stop: asyncio.Event, interrupt: Callable[[JobControl], None] | None = None
    ) -> None:
        """Admit jobs until `stop`; then interrupt the running ones and wait for their tasks."""
        async with asyncio.TaskGroup() as tg:
            stopper = tg.create_task(stop.wait())
            while not stop.is_set():
                self._admit(tg)
                if self._wake.is_set():
                    self._wake.clear()
                    await asyncio.sleep(0)  # let other tasks run between admissions
                    continue
                waker = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait({waker, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waker.cancel()
                self._wake.clear()
            for jcr in list(self._running):
                if interrupt is not None:
                    interrupt(jcr)
                else:
                    jcr.canceled.set()

    def _candidates(self) -> Iterator[Candidate]:
        for jcr in self._waiting:
            yield jcr.candidate()

    def _admit(self, tg: asyncio.TaskGroup) -> None:
        self._wake.clear()
        self.admissions += 1
        decision = admit(
            self._candidates(),
            [j.candidate() for j in self._running],
            self._limits(),
            expand_tail=False,
        )
        head = self._waiting[: decision.scanned]
        by_id = {j.job_id: j for j in head}
        held: set[int] = set()
        for job_id in decision.start:
            jcr = by_id[job_id]
            reason = self._gate(jcr) if self._gate is not None else None
            if reason is not None:  # held by the duplicate policy: its slots were not used
                self._set_reason(jcr, reason)
                held.add(job_id)
                continue
            if job_id not in self._waiting_ids:  # the gate canceled it (a duplicate)
                continue
            self._waiting.remove(jcr)
            self._waiting_ids.discard(job_id)
            self._unmarked.discard(job_id)
            jcr.wait = None
            self._running.append(jcr)
            tg.create_task(self._run_one(jcr), name=f"job-{jcr.job_id}")
        for job_id, reason in decision.waits.items():
            self._set_reason(by_id[job_id], reason)
        self._mark_tail(set(by_id), decision.tail)
        self._specific = set(decision.waits) | held
        if held and len(held) < len(decision.start):
            self.kick()  # admit again without the slots the held jobs were counted for

    def _mark_tail(self, head: set[int], tail: WaitReason | None) -> None:
        """Jobs past the scan share one reason; touch only those whose reason may have changed:
        all of them when the shared reason changed, else the new ones and the ones that had a
        reason of their own last time."""
        if tail is not None:
            if tail != self._tail:
                todo = [j for j in self._waiting if j.job_id not in head]
            else:
                ids = (self._specific | self._unmarked) - head
                todo = [self._jobs[i] for i in ids if i in self._waiting_ids]
            for jcr in todo:
                self._set_reason(jcr, tail, quiet=True)
            if todo and self._on_tail is not None:
                self._on_tail(todo, tail)
        self._unmarked.clear()
        self._tail = tail

    def _set_reason(self, jcr: JobControl, reason: WaitReason, quiet: bool = False) -> None:
        """Give a waiting job its reason. `quiet` (the shared tail reason of a long queue) skips the
        per-job observers; `on_tail` then records the whole group at once."""
        self._unmarked.discard(jcr.job_id)
        if jcr.wait == reason:
            return
        if quiet or jcr.status not in st.WAITING or jcr.transitions is None:
            if jcr.transitions is not None:
                jcr.transitions.quiet(jcr, reason)
            else:
                jcr.wait = reason
            return
        jcr.set_wait(reason)

    async def _run_one(self, jcr: JobControl) -> None:
        try:
            await self._run(jcr)
        except Exception:  # a job task boundary: record and keep the queue alive
            self.log.exception("job_task_crashed", job_id=jcr.job_id, job=jcr.unique)
        finally:
            self._running.remove(jcr)
            jcr.done.set()
            self._jobs.pop(jcr.job_id, None)
            self.kick()
