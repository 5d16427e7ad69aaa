"""Write-behind for job state: status, wait reasons, progress and log lines reach the catalog in one
transaction per batch, in the order they happened. `update_job` waits until its row is written."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Final

FLUSH_DELAY: Final = 0.02  # coalesce the changes of 20 ms into one transaction
MAX_PENDING: Final = 2000
MAX_ATTEMPTS: Final = 5  # a batch the catalog refuses this often is dropped, and the error reported
RETRY_DELAY: Final = 0.5

Apply = Callable[[dict[int, dict[str, Any]], list[tuple[int, float, str]]], Awaitable[None]]


class JobWriter:
    def __init__(self, apply: Apply, log: Any, retry_delay: float = RETRY_DELAY) -> None:
        self._apply = apply
        self._retry_delay = retry_delay
        self.log = log
        self._updates: dict[int, dict[str, Any]] = {}
        self._logs: list[tuple[int, float, str]] = []
        self._wake = asyncio.Event()
        self._written: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self._failures = 0

    def job(self, job_id: int, **columns: Any) -> None:
        """Queue Job column changes; later values for the same column win."""
        self._updates.setdefault(job_id, {}).update(columns)
        self._kick()

    def add_log(self, job_id: int, when: float, text: str) -> None:
        self._logs.append((job_id, when, text))
        self._kick()

    async def update_job(self, job_id: int, **columns: Any) -> None:
        """Queue changes and wait until they (and everything queued before them) are in the catalog."""
        self.job(job_id, **columns)
        await self.flush()

    async def flush(self) -> None:
        if not self._updates and not self._logs:
            return
        done = self._next_write()
        self._wake.set()
        await asyncio.shield(done)

    def _next_write(self) -> asyncio.Future[None]:
        if self._written is None:
            self._written = asyncio.get_running_loop().create_future()
        return self._written

    def _requeue(self, updates: dict[int, dict[str, Any]], logs: list[tuple[int, float, str]],
                 done: asyncio.Future[None] | None) -> None:
        """Put a failed batch back in front of what came in since; newer column values win."""
        for job_id, columns in updates.items():
            self._updates[job_id] = {**columns, **self._updates.get(job_id, {})}
        self._logs[:0] = logs
        if done is not None:
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

    async def _run(self) -> None:
        while self._updates or self._logs:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_DELAY)
            self._wake.clear()
            updates, self._updates = self._updates, {}
            logs, self._logs = self._logs, []
            done, self._written = self._written, None
            try:
                await self._apply(updates, logs)
                self.batches += 1
                self._failures = 0
            except Exception as exc:  # the catalog failed (locked, disk full): keep the batch, retry
                self._failures += 1
                self.log.exception("job_state_write_failed", jobs=len(updates), lines=len(logs),
                                   attempt=self._failures)
                if self._failures < MAX_ATTEMPTS:
                    self._requeue(updates, logs, done)
                    await asyncio.sleep(self._retry_delay * self._failures)
                    continue
                self._failures = 0
                if done is not None and not done.done():
                    done.set_exception(exc)
                    done.exception()  # retrieved here too: a caller may not be waiting
                continue
            if done is not None and not done.done():
                done.set_result(None)
        if self._written is not None and not self._written.done():
            self._written.set_result(None)
            self._written = None


def _copy_result(source: asyncio.Future[None], target: asyncio.Future[None]) -> None:
    if target.done():
        return
    if source.exception() is not None:
        target.set_exception(source.exception())  # type: ignore[arg-type]
    else:
        target.set_result(None)
