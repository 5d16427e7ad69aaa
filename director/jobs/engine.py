"""The Director's job engine around the queue: submit (JobqAdd), start times, duplicate control, time
limits, cancel in every state, reschedule on error, progress persistence, and recovery of the
catalog's queue after a restart. The catalog is the queue: every state change is written there."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Final

from common.aio import first_set
from director.jobs import hooks
from director.jobs import status as st
from director.jobs.admission import WaitReason
from director.jobs.control import JobControl
from director.jobs.persist import JobWriter
from director.jobs.queue import JobQueue
from director.jobs.request import loads
from director.jobs.runner import run_job
from director.jobs.services import JobServices
from director.jobs.setup import RunRequest, setup_job
from director.jobs.transitions import RUN_WAITS, Transitions

if TYPE_CHECKING:
    from director.catalog import JobRow
    from director.catalog.models import ColumnValue
    from director.config import JobResource
    from director.daemon import DirectorDaemon

WATCH_INTERVAL: Final = 0.5
PROGRESS_INTERVAL: Final = 1.0  # running counters reach the catalog at most once a second
STOP_WRITE_TIMEOUT: Final = (
    30.0  # a stopping Director waits this long for an unwritable catalog, then gives up
)
LEVEL_RANK: Final = {"F": 3, "D": 2, "I": 1}


def _stamp(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))


class JobEngine:
    def __init__(self, director: DirectorDaemon) -> None:
        self.director = director
        self.log = director.log
        self.queue = JobQueue(
            director.job_limits, self._run, director.log, gate=self._gate, on_tail=self._tail_waits
        )
        self.writer = JobWriter(self._apply, director.log, on_writable=self._catalog_writable)
        self.transitions = Transitions(
            self.writer,
            director.events.publish,
            director.joblog,
            lambda jcr, old, new: hooks.on_status_change(director, jcr, old, new),
            time.time,
        )
        self._timers: dict[int, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._media = asyncio.Event()

    @functools.cached_property
    def services(self) -> JobServices:
        """What job code sees of the Director (never the daemon itself)."""
        director = self.director
        return JobServices(
            name=director.name,
            log=director.log,
            db=director.db,
            joblog=director.joblog,
            transitions=self.transitions,
            writer=self.writer,
            dialer=director,
            current_config=lambda: director.config,
            tls_enable=lambda: bool(director.own.tls_enable),
            media_changed=self.media_changed,
            ensure_pool=director.ensure_pool,
            namer=director.namer,
            submit=director.submit,
            cancel_job=self.cancel_job,
        )

    # -- media ------------------------------------------------------------------------------

    def media_added(self) -> None:
        """A volume was labeled or changed status: jobs waiting for media look again now."""
        self._media.set()
        self._media = asyncio.Event()

    async def media_changed(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._media.wait(), timeout)

    async def _apply(
        self, updates: dict[int, dict[str, ColumnValue]], logs: list[tuple[int, float, str]]
    ) -> None:
        await self.director.db.apply_job_changes(updates, logs)

    # -- an unwritable catalog ----------------------------------------------------------------

    def refusal(self) -> str | None:
        """Why new jobs are refused now (the catalog does not take the job state), or None."""
        reason = self.writer.unwritable
        if reason is None:
            return None
        return f"the catalog is not writable: {reason}; new jobs are refused until it is"

    def _catalog_writable(self, reason: str | None) -> None:
        """The write-behind found the catalog unwritable (reason) or writable again (None): tell the
        operator; queued and running jobs keep their place, their state is written when it can be."""
        if reason is not None:
            text = (
                f"{self.refusal()} (queued and running jobs keep their state in memory until then)"
            )
        else:
            text = "the catalog is writable again; new jobs are accepted"
        self.director.director_message("error" if reason is not None else "info", text)
        self.queue.kick()

    # -- status changes are events -----------------------------------------------------------

    def _tail_waits(self, jobs: list[JobControl], reason: WaitReason) -> None:
        """Many waiting jobs now share one reason: their rows are updated, and one event says so
        (not one log line, event and hook per job: with 10,000 queued jobs that would stall)."""
        text = f"{reason.code} {reason.resource}".strip()
        for jcr in jobs:
            self.writer.job(jcr.job_id, JobStatus=jcr.status, WaitReason=text)
        self.director.events.publish(
            "queue_waiting",
            status=reason.status,
            wait_reason=dataclasses.asdict(reason),
            jobs=len(jobs),
            jobids=[j.job_id for j in jobs[:100]],
        )

    # -- JobqAdd -----------------------------------------------------------------------------

    async def submit(self, req: RunRequest, existing: JobRow | None = None) -> JobControl:
        """RunJob → SetupJob → JobqAdd."""
        jcr = await setup_job(self.services, req, existing)
        self.transitions.attach(jcr)
        self.queue.track(jcr)
        self.director.events.publish(
            "job_status",
            jobid=jcr.job_id,
            job=jcr.unique,
            name=jcr.name,
            type=jcr.job_type,
            level=jcr.level,
            old=None,
            status=jcr.status,
            wait_reason=None,
        )
        self._enqueue(jcr)
        return jcr

    def _enqueue(self, jcr: JobControl) -> None:
        now = time.time()
        if jcr.sched_time > now + 0.05:
            # A job scheduled in the future waits in a timer, visible (status t) and cancelable.
            jcr.set_wait(WaitReason(st.WAIT_START_TIME, "start_time", _stamp(jcr.sched_time)))
            task = asyncio.create_task(self._start_later(jcr), name=f"timer-{jcr.job_id}")
            self._timers[jcr.job_id] = task
            job_id = jcr.job_id

            def forget(_task: asyncio.Task[None]) -> None:
                if self._timers.get(job_id) is _task:
                    del self._timers[job_id]

            task.add_done_callback(forget)
            return
        self._gate(jcr)  # duplicates are judged as the job is queued, and again as it starts
        if jcr.canceled.is_set():
            return
        self.queue.add(jcr)

    async def _start_later(self, jcr: JobControl) -> None:
        await first_set([jcr.canceled], timeout=max(0.0, jcr.sched_time - time.time()))
        if jcr.canceled.is_set() or jcr.status in st.FINAL:
            return
        self.transitions.change(jcr, st.CREATED)
        self._enqueue(jcr)

    # -- duplicate control (Bareos allow_duplicate_job) ---------------------------------------

    def _gate(self, jcr: JobControl) -> WaitReason | None:
        """Called as a job is about to start: apply the duplicate policy of its Job resource.

        The older job wins unless a Cancel … Duplicates directive says otherwise; a job whose
        running duplicate was told to cancel waits (`duplicate_policy`) until that one has ended."""
        res = jcr.resource
        if getattr(res, "allow_duplicate_jobs", True) or jcr.canceled.is_set():
            return None
        if (
            jcr.copy is not None
        ):  # a Copy/Migrate worker is no duplicate (Bareos: ignoreduplicatecheck)
            return None
        pending_end: list[JobControl] = []
        for other in list(self.queue.jobs.values()):
            if (
                other is jcr
                or other.copy is not None
                or other.name != jcr.name
                or other.status in st.FINAL
                or other.done.is_set()
            ):
                continue
            if other.canceled.is_set():
                if self.queue.is_running(other):
                    pending_end.append(other)
                continue
            running = self.queue.is_running(other)
            if not running and other.job_id > jcr.job_id and not res.cancel_queued_duplicates:
                continue  # a newer queued duplicate is judged when its own turn comes
            if res.cancel_lower_level_duplicates and jcr.job_type == other.job_type == "B":
                mine, theirs = LEVEL_RANK.get(jcr.level, 0), LEVEL_RANK.get(other.level, 0)
                if theirs < mine:
                    self.cancel_job(
                        other, f"canceled by JobId {jcr.job_id}, a duplicate of higher level"
                    )
                    if running:
                        pending_end.append(other)
                    continue
                if theirs > mine:
                    self.cancel_job(jcr, f"JobId {other.job_id} is a duplicate of higher level")
                    return None
            if not running and res.cancel_queued_duplicates:
                self.cancel_job(other, f"canceled by JobId {jcr.job_id} (Cancel Queued Duplicates)")
                continue
            if running and res.cancel_running_duplicates:
                self.cancel_job(
                    other, f"canceled by JobId {jcr.job_id} (Cancel Running Duplicates)"
                )
                pending_end.append(other)
                continue
            self.cancel_job(
                jcr,
                f"duplicate of JobId {other.job_id}, which is "
                f"{'running' if running else 'queued'} (Allow Duplicate Jobs = no)",
            )
            return None
        if pending_end:
            return WaitReason(
                st.WAIT_JOB_RES,
                "duplicate_policy",
                f"job={jcr.name} jobid={','.join(str(j.job_id) for j in pending_end)}",
            )
        return None

    # -- cancel and ending jobs that never started --------------------------------------------

    def cancel_job(self, jcr: JobControl, reason: str, final: str = st.CANCELED) -> str:
        """Cancel in any state: scheduled and queued jobs end at once; running jobs are told to stop."""
        if jcr.status in st.FINAL or jcr.done.is_set():
            return f"JobId {jcr.job_id} already ended with status {jcr.status}"
        if jcr.canceled.is_set() and not self.queue.is_running(jcr):
            return f"JobId {jcr.job_id} is being canceled already"
        jcr.cancel_reason = jcr.cancel_reason or reason
        jcr.canceled.set()
        if self.queue.is_running(jcr):
            self.director.joblog(jcr, "info", f"Cancel: {reason}")
            return f"JobId {jcr.job_id}, Job {jcr.unique} marked to be canceled."
        self.queue.remove_waiting(jcr)
        timer = self._timers.pop(jcr.job_id, None)
        if timer is not None:
            timer.cancel()
        self._spawn(self._end_unstarted(jcr, final, reason))
        return f"JobId {jcr.job_id}, Job {jcr.unique} marked to be canceled."

    async def _end_unstarted(self, jcr: JobControl, final: str, reason: str) -> None:
        jcr.end_time = time.time()
        try:
            await self.transitions.end(
                jcr, final, EndTime=jcr.end_time, RealEndTime=jcr.end_time, Comment=reason[:250]
            )
            self.director.joblog(
                jcr,
                "info" if final == st.CANCELED else "error",
                f"Job {'canceled' if final == st.CANCELED else 'failed'} before it started: {reason}",
            )
        except Exception:  # the catalog failed: still release everyone waiting on this job
            self.log.exception("job_end_not_recorded", job_id=jcr.job_id)
        finally:
            jcr.done.set()
            self.queue.forget(jcr)

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the job task ------------------------------------------------------------------------

    async def _run(self, jcr: JobControl) -> None:
        await run_job(self.services, jcr)  # the queue lets the job go when its task ends
        self.job_ended(jcr)

    def job_ended(self, jcr: JobControl) -> None:
        """Reschedule On Error: a failed (not canceled) job runs again later, as a new JobId."""
        if jcr.status not in (st.ERROR, st.FATAL, st.INCOMPLETE):
            return
        req = jcr.request
        if req is None:
            return
        retry = self._retry_request(jcr.resource, req, jcr.retry, jcr.retry_of or jcr.job_id)
        if isinstance(retry, str):
            if retry:
                self.director.joblog(jcr, "info", retry)
            return
        self._spawn(self._resubmit(jcr, retry, (retry.when or time.time()) - time.time()))

    @staticmethod
    def _retry_request(
        res: JobResource, req: RunRequest, done: int, first: int
    ) -> RunRequest | str:
        """The next run of a failed job, or why there is none ('' when rescheduling is off)."""
        if req.params.get("no_reschedule") or not getattr(res, "reschedule_on_error", False):
            return ""  # actions of a multi-action job retry by their own Max Retries
        times = int(res.reschedule_times)
        if times and done >= times:
            return f"Not rescheduled: Reschedule Times = {times} reached"
        delay = float(res.reschedule_interval) * (float(res.reschedule_backoff) ** done)
        if res.reschedule_max_interval:
            delay = min(delay, float(res.reschedule_max_interval))
        return dataclasses.replace(req, when=time.time() + delay, retry=done + 1, retry_of=first)

    async def _resubmit(self, jcr: JobControl, req: RunRequest, delay: float) -> None:
        try:
            new = await self.submit(req)
        except Exception as exc:  # a config reload may have removed the job: say so, keep going
            self.director.joblog(jcr, "error", f"Reschedule failed: {exc}")
            return
        self.director.joblog(
            jcr,
            "info",
            f"Rescheduled as JobId {new.job_id} to run in {delay:.0f} s "
            f"(retry {req.retry}, at {_stamp(new.sched_time)})",
        )

    # -- time limits and progress ------------------------------------------------------------

    async def watch(self, stop: asyncio.Event) -> None:
        last_progress = 0.0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), WATCH_INTERVAL)
            now = time.time()
            for jcr in list(self.queue.jobs.values()):
                problem = limit_problem(jcr, now)
                if problem is not None:
                    final, reason = problem
                    self.director.joblog(jcr, "fatal" if final == st.ERROR else "error", reason)
                    self.cancel_job(jcr, reason, final)
            if now - last_progress >= PROGRESS_INTERVAL:
                last_progress = now
                for jcr in self.queue.running:
                    counters = (jcr.progress.files, jcr.progress.bytes)
                    if jcr.status == st.RUNNING and counters != jcr.progress.persisted:
                        jcr.progress.persisted = counters
                        self.writer.job(jcr.job_id, JobFiles=counters[0], JobBytes=counters[1])
        self.writer.stop_retrying_after(
            STOP_WRITE_TIMEOUT
        )  # jobs may wait on an unwritable catalog

    # -- recovery: the catalog is the queue ----------------------------------------------------

    async def recover(self) -> None:
        """Queued and scheduled jobs go back in the queue with their JobId, name and scheduled time;
        jobs that were running end in error (their daemons dropped the sessions when the Director's
        connections went) and may reschedule; actions of a multi-action job that was running end
        with it (the multi-action job, if rescheduled, starts over from its first action)."""
        rows = await self.director.db.unfinished_jobs()
        now = time.time()
        requeued, ended = 0, 0
        running_parents = {row.job_id for row, *_ in rows if row.status in (st.RUNNING, *RUN_WAITS)}
        for row, request, _wait, retry in rows:
            was_running = row.status in (st.RUNNING, *RUN_WAITS)
            req = self._saved_request(row, request)
            status, reason = st.ERROR, ""
            if row.parent_job_id is not None and (
                row.parent_job_id in running_parents or was_running
            ):
                status = st.CANCELED
                reason = f"its multi-action job JobId {row.parent_job_id} ended when the Director stopped"
            elif was_running:
                reason = "the Director stopped while this job was running; the daemons dropped its sessions"
            elif row.name not in self.director.config.jobs:
                reason = f"the Director restarted and Job resource {row.name!r} no longer exists"
            elif req is None:
                reason = "the Director stopped while this job was queued, and its run request was not kept"
            else:
                req.when = row.sched_time  # Max Start Delay still counts from the original time
                try:
                    await self.submit(req, existing=row)
                    requeued += 1
                    continue
                except Exception as exc:  # the configuration changed under the queued job: say how
                    reason = f"could not queue again after a Director restart: {exc}"
            ended += 1
            await self.writer.update_job(
                row.job_id,
                JobStatus=status,
                EndTime=now,
                RealEndTime=now,
                WaitReason=None,
                Comment=reason[:250],
            )
            self.writer.add_log(
                row.job_id,
                now,
                f"{self.director.name} JobId {row.job_id}: "
                f"{'Fatal error' if status == st.ERROR else 'Canceled'}: {reason}",
            )
            res = self.director.config.jobs.get(row.name)
            if status == st.ERROR and was_running and req is not None and res is not None:
                again = self._retry_request(res, req, retry, req.retry_of or row.job_id)
                if isinstance(again, RunRequest):
                    await self.submit(again)
        if rows:
            self.log.warning("queue_recovered", requeued=requeued, ended=ended)

    def _saved_request(self, row: JobRow, request: str | None) -> RunRequest | None:
        if not request:
            return None
        try:
            return loads(request)
        except (ValueError, TypeError, KeyError) as exc:
            self.log.warning("run_request_unreadable", job_id=row.job_id, reason=str(exc))
            return None

    # -- stopping ----------------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event) -> None:
        """Run the queue until the Director stops; then interrupt running jobs (their rows stay
        unfinished, so the next start ends them and applies Reschedule On Error, as after a
        crash) and write everything still pending to the catalog."""
        await self.queue.serve(stop, interrupt=self._interrupt)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=10)
        await self.writer.flush()

    def _interrupt(self, jcr: JobControl) -> None:
        jcr.stopping = True
        jcr.cancel_reason = jcr.cancel_reason or "the Director is stopping"
        jcr.canceled.set()


def limit_problem(jcr: JobControl, now: float) -> tuple[str, str] | None:
    """The time limit a job has exceeded, as (final status, reason), or None (pure)."""
    if jcr.canceled.is_set() or jcr.status in st.FINAL:
        return None
    res = jcr.resource
    started = jcr.start_time is not None
    expires = jcr.expires
    if not started and expires and now > expires:
        return st.ERROR, f"expired: not started by {_stamp(expires)}"
    if not started and res.max_start_delay and now - jcr.sched_time > res.max_start_delay:
        return (
            st.CANCELED,
            f"Max Start Delay exceeded: not started within {res.max_start_delay:.0f} s",
        )
    if res.max_run_sched_time and now - jcr.sched_time > res.max_run_sched_time:
        return (
            st.CANCELED,
            f"Max Run Sched Time exceeded: {res.max_run_sched_time:.0f} s since scheduled",
        )
    if started and res.max_run_time and now - (jcr.start_time or now) > res.max_run_time:
        return st.CANCELED, f"Max Run Time exceeded: running longer than {res.max_run_time:.0f} s"
    if started and res.max_wait_time:
        waited = jcr.waited
        if jcr.wait_since is not None:
            waited += now - jcr.wait_since
        if waited > res.max_wait_time:
            return st.CANCELED, f"Max Wait Time exceeded: waited {waited:.0f} s for resources"
    return None
