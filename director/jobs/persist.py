"""Write-behind for job state: status, wait reasons, progress and log lines reach the catalog in one
transaction per batch, in the order they happened. `update_job` waits until its row is written.

A batch the catalog refuses for a reason that may pass (disk full, I/O error, locked) is kept and
retried with backoff until it is written, merged with what came in since (the newest value of each
column wins), so no status, final or not, is dropped. While a batch keeps failing (UNWRITABLE_ATTEMPTS
attempts, or UNWRITABLE_AFTER seconds) the writer says the catalog is not writable (`unwritable`) and
the Director refuses new jobs until a write succeeds. A batch the catalog can never take (a value it
rejects) is written job by job so that only the offending job's changes are lost, and reported."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Final

from common.logging import Log
from director.catalog.models import ColumnValue

FLUSH_DELAY: Final = 0.02  # coalesce the changes of 20 ms into one transaction
MAX_PENDING: Final = 2000
RETRY_DELAY: Final = 0.5  # the first retry of a refused batch; each further one waits twice as long
MAX_RETRY_DELAY: Final = 5.0  # ... but never longer than this, so a freed disk is noticed soon
UNWRITABLE_ATTEMPTS: Final = (
    3  # a batch refused this often in a row means the catalog is not writable
)
UNWRITABLE_AFTER: Final = (
    10.0  # ... as does a batch still refused this many seconds after its first failure
)

Apply = Callable[[dict[int, dict[str, ColumnValue]], list[tuple[int, float, str]]], Awaitable[None]]
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def retriable(exc: BaseException) -> bool:
    """Whether a failed write may succeed later (the catalog's errors say so; OSError is I/O)."""
    return bool(getattr(exc, "retriable", False)) or isinstance(exc, OSError)


class JobWriter:
    def __init__(
        self,
        apply: Apply,
        log: Log,
        retry_delay: float = RETRY_DELAY,
        *,
        max_retry_delay: float = MAX_RETRY_DELAY,
        unwritable_attempts: int = UNWRITABLE_ATTEMPTS,
        unwritable_after: float = UNWRITABLE_AFTER,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        on_writable: Callable[[str | None], None] | None = None,
    ) -> None:
        self._apply = apply
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._unwritable_attempts = unwritable_attempts
        self._unwritable_after = unwritable_after
        self.clock = clock  # injected; tests replace clock and sleep with a fake time that jumps
        self.sleep = sleep
        self._on_writable = on_writable
        self.log = log
        self._updates: dict[int, dict[str, ColumnValue]] = {}
        self._logs: list[tuple[int, float, str]] = []
        self._wake = asyncio.Event()
        self._written: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self._failures = 0  # consecutive refusals of the pending batch
        self._failing_since: float | None = None
        self._one_by_one = False  # a batch the catalog can never take is being written job by job
        self._dropped: Exception | None = (
            None  # why part of the batch being written job by job was lost
        )
        self._give_up_at: float | None = None
        self.unwritable: str | None = None  # why the catalog is not writable, while it is not

    def job(self, job_id: int, **columns: ColumnValue) -> None:
        """Queue Job column changes; later values for the same column win."""
        self._updates.setdefault(job_id, {}).update(columns)
        self._kick()

    def add_log(self, job_id: int, when: float, text: str) -> None:
        self._logs.append((job_id, when, text))
        self._kick()

    async def update_job(self, job_id: int, **columns: ColumnValue) -> None:
        """Queue changes and wait until they (and everything queued before them) are in the catalog."""
        self.job(job_id, **columns)
        await self.flush()

    async def flush(self) -> None:
        """Wait until everything queued so far is in the catalog (or given up, on stop)."""
        if not self._updates and not self._logs:
            if self._task is not None and not self._task.done():
                await asyncio.shield(
                    self._task
                )  # a batch taken but not yet written may still be refused
            return
        done = self._next_write()
        self._wake.set()
        await asyncio.shield(done)

    def stop_retrying_after(self, seconds: float) -> None:
        """The Director is stopping: a batch still refused `seconds` from now is given up (its jobs
        end as recovery decides at the next start) instead of holding the Director forever."""
        self._give_up_at = self.clock() + seconds

    @property
    def pending(self) -> int:
        """Jobs and log lines not yet in the catalog."""
        return len(self._updates) + len(self._logs)

    def _next_write(self) -> asyncio.Future[None]:
        if self._written is None:
            self._written = asyncio.get_running_loop().create_future()
        return self._written

    def _requeue(
        self,
        updates: dict[int, dict[str, ColumnValue]],
        logs: list[tuple[int, float, str]],
        done: asyncio.Future[None] | None,
    ) -> None:
        """Put a failed batch back in front of what came in since; newer column values win."""
        for job_id, columns in updates.items():
            self._updates[job_id] = {**columns, **self._updates.get(job_id, {})}
        self._logs[:0] = logs
        if done is not None and not done.done():
            if self._written is not None and self._written is not done:
                later = self._written
                done.add_done_callback(lambda f: _copy_result(f, later))
            self._written = done

    def _kick(self) -> None:
        self._next_write()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="job-writer")
        if len(self._updates) + len(self._logs) >= MAX_PENDING:
            self._wake.set()

    def _take(
        self,
    ) -> tuple[
        dict[int, dict[str, ColumnValue]], list[tuple[int, float, str]], asyncio.Future[None] | None
    ]:
        """The next batch: everything pending, or (writing job by job) one job's changes and lines.
        The waiters' future goes with the batch that empties the queue."""
        if self._one_by_one:
            job_id = next(iter(self._updates)) if self._updates else self._logs[0][0]
            updates = {job_id: self._updates.pop(job_id)} if job_id in self._updates else {}
            logs = [line for line in self._logs if line[0] == job_id]
            self._logs = [line for line in self._logs if line[0] != job_id]
            if self._updates or self._logs:
                return updates, logs, None
        else:
            updates, self._updates = self._updates, {}
            logs, self._logs = self._logs, []
        done, self._written = self._written, None
        return updates, logs, done

    async def _run(self) -> None:
        while self._updates or self._logs:
            if not self._one_by_one:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), FLUSH_DELAY)
                self._wake.clear()
            updates, logs, done = self._take()
            try:
                await self._apply(updates, logs)
            except Exception as exc:  # the catalog refused the batch
                if retriable(exc):
                    self._requeue(updates, logs, done)
                    if not await self._refused(exc, len(updates), len(logs)):
                        return
                    continue
                self._answered()
                if not self._one_by_one and len({*updates, *(line[0] for line in logs)}) > 1:
                    self.log.warning(
                        "job_state_batch_split", jobs=len(updates), lines=len(logs), reason=str(exc)
                    )
                    self._one_by_one = True  # find the job whose changes the catalog cannot take
                    self._requeue(updates, logs, done)
                    continue
                self.log.error(
                    "job_state_dropped",
                    jobids=sorted({*updates, *(line[0] for line in logs)}),
                    columns=sorted({c for cols in updates.values() for c in cols}),
                    lines=len(logs),
                    reason=str(exc),
                )
                self._dropped = self._dropped or exc
            else:
                self.batches += 1
                self._answered()
            if not self._updates and not self._logs:
                self._one_by_one = False
            if done is not None:
                _resolve(done, self._dropped)
                self._dropped = None
        if self._written is not None:
            _resolve(self._written, self._dropped)
            self._written = None
            self._dropped = None

    def _answered(self) -> None:
        """The catalog took a transaction, or refused it for a reason of its content: it is writable."""
        self._failures = 0
        self._failing_since = None
        if self.unwritable is not None:
            self.unwritable = None
            self.log.warning("catalog_writable", pending=self.pending)
            if self._on_writable is not None:
                self._on_writable(None)

    async def _refused(self, exc: Exception, jobs: int, lines: int) -> bool:
        """A refusal that may pass: count it, declare the catalog unwritable past the threshold, and
        wait before the next attempt. False when the Director is stopping and gave up waiting."""
        now = self.clock()
        self._failures += 1
        if self._failing_since is None:
            self._failing_since = now
        self.log.error(
            "job_state_write_failed",
            jobs=jobs,
            lines=lines,
            attempt=self._failures,
            reason=str(exc),
        )
        if self.unwritable is None and (
            self._failures >= self._unwritable_attempts
            or now - self._failing_since >= self._unwritable_after
        ):
            self.unwritable = str(exc)
            self.log.error(
                "catalog_unwritable",
                reason=self.unwritable,
                attempts=self._failures,
                seconds=round(now - self._failing_since, 3),
            )
            if self._on_writable is not None:
                self._on_writable(self.unwritable)
        if self._give_up_at is not None and now >= self._give_up_at:
            self._give_up(exc)
            return False
        await self.sleep(min(self._max_retry_delay, self._retry_delay * 2 ** (self._failures - 1)))
        return True

    def _give_up(self, exc: Exception) -> None:
        self.log.error(
            "job_state_not_written",
            jobids=sorted({*self._updates, *(line[0] for line in self._logs)}),
            lines=len(self._logs),
            reason=str(exc),
        )
        self._updates, self._logs = {}, []
        if self._written is not None:
            _resolve(self._written, exc)
            self._written = None


def _resolve(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
        future.exception()  # retrieved here too: a caller may not be waiting


def _copy_result(source: asyncio.Future[None], target: asyncio.Future[None]) -> None:
    _resolve(target, None if source.cancelled() else source.exception())
