"""The one status transition function of the Director.

Every change of a job's status letter or wait reason goes through `Transitions`: it is checked
against the status table (`status.next_status`: a final status never changes, sticky errors win),
then, in this order and once: the Job row (through the write-behind; a final row is awaited, with
the job's end columns), the `job_status` event, the job log line, the `Run On Status Change`
hooks. Queued jobs, running jobs and copy/migrate workers all change status here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from director.jobs import status as st
from director.jobs.admission import WaitReason

if TYPE_CHECKING:
    from director.catalog.models import ColumnValue
    from director.jobs.control import JobControl
    from director.jobs.persist import JobWriter

RUN_WAITS: Final = frozenset({st.WAIT_FD, st.WAIT_SD, st.WAIT_MOUNT, st.WAIT_MEDIA, st.BLOCKED})

Publish = Callable[..., object]
JobLog = Callable[["JobControl", str, str], None]
Hooks = Callable[["JobControl", str, str], object]


class Transitions:
    """Applies status changes with their row, event, log line and hooks (see the module docstring)."""

    def __init__(
        self,
        writer: JobWriter,
        publish: Publish,
        joblog: JobLog,
        hooks: Hooks,
        clock: Callable[[], float],
    ) -> None:
        self._writer = writer
        self._publish = publish
        self._joblog = joblog
        self._hooks = hooks
        self._clock = clock

    def attach(self, jcr: JobControl) -> JobControl:
        """From now on the job's status changes go through here."""
        jcr.transitions = self
        return jcr

    def change(self, jcr: JobControl, new: str, wait: WaitReason | None = None) -> None:
        """Move a job to `new` (with `wait` as its reason); a final status goes through `end`."""
        old = jcr.status
        target = st.next_status(old, new)
        if target in st.FINAL:
            raise st.IllegalTransition(
                f"JobId {jcr.job_id}: a final status is written by Transitions.end"
            )
        changed_reason = wait != jcr.wait
        jcr.wait = wait
        if target == old and not changed_reason:
            return
        self._account_waits(jcr, old, target)
        jcr.force_status(target)
        shown = wait if target != st.RUNNING else None
        self._writer.job(jcr.job_id, JobStatus=target, WaitReason=_reason_text(shown))
        self._announce(jcr, old, target, shown)

    def wait(self, jcr: JobControl, reason: WaitReason | None) -> None:
        """Wait with a reason (its letter becomes the status), or stop waiting (None: the letter stays)."""
        if reason is None:
            jcr.wait = None
            return
        self.change(jcr, reason.status, reason)

    def quiet(self, jcr: JobControl, reason: WaitReason) -> None:
        """A waiting job takes a reason shared by a long queue's tail: no row, event, log line or
        hook per job here; the queue records the whole group at once (JobEngine._tail_waits)."""
        jcr.wait = reason
        if jcr.status in st.WAITING:
            jcr.force_status(reason.status)

    async def end(self, jcr: JobControl, final: str, **columns: ColumnValue) -> None:
        """End a job: its final status, written at once with the end columns it names (EndTime,
        counters, Comment, …), then the event, the log line and the hooks."""
        if final not in st.FINAL:
            raise st.IllegalTransition(f"JobId {jcr.job_id}: {final!r} is not a final status")
        old = jcr.status
        target = st.next_status(old, final) if old not in st.FINAL else old
        jcr.wait = None
        self._account_waits(jcr, old, target)
        jcr.force_status(target)
        await self._writer.update_job(jcr.job_id, JobStatus=target, WaitReason=None, **columns)
        if target != old:
            self._announce(jcr, old, target, None)

    def _account_waits(self, jcr: JobControl, old: str, new: str) -> None:
        """Time spent in run waits counts against Max Wait Time."""
        now = self._clock()
        if old in RUN_WAITS and jcr.wait_since is not None:
            jcr.waited += now - jcr.wait_since
            jcr.wait_since = None
        if new in RUN_WAITS and jcr.wait_since is None:
            jcr.wait_since = now

    def _announce(self, jcr: JobControl, old: str, new: str, wait: WaitReason | None) -> None:
        self._publish(
            "job_status",
            jobid=jcr.job_id,
            job=jcr.unique,
            name=jcr.name,
            type=jcr.job_type,
            level=jcr.level,
            old=old,
            status=new,
            wait_reason=None if wait is None else dataclasses.asdict(wait),
        )
        reason = f" ({wait.describe()})" if wait is not None else ""
        text = (
            f"Status {old} -> {new}: {st.describe(new)}{reason}"
            if old != new
            else f"Waiting: {wait.describe() if wait else ''}"
        )
        self._joblog(jcr, "info", text)
        self._hooks(jcr, old, new)


def _reason_text(wait: WaitReason | None) -> str | None:
    return None if wait is None else f"{wait.code} {wait.resource}".strip()
