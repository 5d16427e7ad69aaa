"""Run On Status Change: operator commands run in the background on every job status change."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from common.logging import Log
from common.scripts import run_command
from director.jobs.scripts import substitute

if TYPE_CHECKING:
    from director.jobs.control import JobControl

HOOK_TIMEOUT: Final = 60.0  # a hook still running after this is killed (its whole process group)
MAX_RUNNING_HOOKS: Final = 4  # across the Director
MAX_QUEUED_HOOKS: Final = (
    1000  # waiting to run, across the Director; more are dropped with a warning
)
OUTPUT_IN_WARNING: Final = 300  # characters of a failed hook's output quoted in the job log

Runner = Callable[[str, float, Mapping[str, str]], Awaitable[tuple[int, str]]]


class HookHost(Protocol):
    """What hooks use of the Director: its name, its log and the job log."""

    @property
    def name(self) -> str: ...

    @property
    def log(self) -> Log: ...

    def joblog(self, jcr: JobControl, level: str, text: str) -> None: ...


async def _run(command: str, timeout: float, env: Mapping[str, str]) -> tuple[int, str]:
    return await run_command(command, timeout, env)


def status_event(jcr: JobControl, old: str | None, new: str) -> dict[str, object]:
    """The fields of a `job_status` event (what `EventBus.publish` is given)."""
    wait = jcr.wait
    return {
        "jobid": jcr.job_id,
        "job": jcr.unique,
        "name": jcr.name,
        "type": jcr.job_type,
        "level": jcr.level,
        "old": old,
        "status": new,
        "wait_reason": None if wait is None else dataclasses.asdict(wait),
    }


@dataclass(frozen=True)
class HookCall:
    """One hook command for one status change, substituted when the change happened."""

    jcr: JobControl
    command: str
    env: Mapping[str, str]
    old: str
    new: str


class HookRunner:
    """Runs hook commands in order per job, at most `max_running` at once across the Director and at
    most `max_queued` waiting; every task it starts is tracked and ended by `aclose`."""

    def __init__(
        self,
        director: HookHost,
        *,
        max_running: int = MAX_RUNNING_HOOKS,
        max_queued: int = MAX_QUEUED_HOOKS,
        timeout: float = HOOK_TIMEOUT,
        run: Runner = _run,
    ) -> None:
        self.director = director
        self.max_queued = max_queued
        self.timeout = timeout
        self._run = run
        self._slots = asyncio.Semaphore(max_running)
        self._pending: dict[JobControl, collections.deque[HookCall]] = {}  # per job, in order
        self._workers: dict[JobControl, asyncio.Task[None]] = {}
        self.queued = 0
        self.running = 0
        self.dropped = 0

    def submit(self, call: HookCall) -> bool:
        """Queue a call behind the same job's earlier ones; False if the queue is full (dropped)."""
        if self.queued >= self.max_queued:
            self.dropped += 1
            self.director.log.warning(
                "status_hook_dropped",
                job_id=call.jcr.job_id,
                job=call.jcr.unique,
                command=call.command,
                queued=self.queued,
                dropped=self.dropped,
            )
            return False
        self._pending.setdefault(call.jcr, collections.deque()).append(call)
        self.queued += 1
        if call.jcr not in self._workers:
            task = asyncio.get_running_loop().create_task(
                self._work(call.jcr), name=f"status-hooks-{call.jcr.job_id}"
            )
            self._workers[call.jcr] = task
        return True

    async def _work(self, jcr: JobControl) -> None:
        calls = self._pending[jcr]
        try:
            while calls:
                async with self._slots:
                    call = calls.popleft()
                    self.queued -= 1
                    self.running += 1
                    try:
                        await self._one(call)
                    finally:
                        self.running -= 1
        finally:  # no await between the last `while calls` check and here: submit cannot slip in
            self.queued -= len(calls)
            del self._pending[jcr]
            del self._workers[jcr]

    async def _one(self, call: HookCall) -> None:
        try:
            status, output = await self._run(call.command, self.timeout, call.env)
        except OSError as exc:
            status, output = -1, f"cannot run: {exc}"
        except Exception:  # a task boundary: a broken hook never touches the job
            self.director.log.exception(
                "status_hook_crashed", job_id=call.jcr.job_id, command=call.command
            )
            return
        if status == 0:
            return
        timed_out = status == -1 and output.startswith("timed out")
        how = output.strip() if timed_out else f"exit status {status}"
        tail = "" if timed_out else output.strip()[-OUTPUT_IN_WARNING:]
        text = f'Run On Status Change ({call.old} -> {call.new}) command "{call.command}" failed: {how}'
        try:
            self.director.joblog(call.jcr, "warning", f"{text}: {tail}" if tail else text)
        except Exception:  # the job log itself failing must not crash the hook worker
            self.director.log.exception(
                "status_hook_log_failed", job_id=call.jcr.job_id, command=call.command
            )

    async def join(self) -> None:
        """Wait until every queued hook has run (tests; a drain before stopping)."""
        while self._workers:
            await asyncio.wait(list(self._workers.values()))

    async def aclose(self) -> None:
        """Cancel queued and running hooks (their processes are killed) and wait for the workers."""
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        if workers:
            await asyncio.wait(workers)


_RUNNERS: weakref.WeakKeyDictionary[HookHost, HookRunner] = weakref.WeakKeyDictionary()


def hook_runner(director: HookHost) -> HookRunner:
    """The Director's hook runner: its `status_hooks` attribute if it has one (so its stop can
    `aclose` it), else one made on first use and kept as long as the Director object lives."""
    own = getattr(director, "status_hooks", None)
    if isinstance(own, HookRunner):
        return own
    runner = _RUNNERS.get(director)
    if runner is None:
        runner = _RUNNERS[director] = HookRunner(director)
    return runner


def hook_environment(
    jcr: JobControl, old: str, new: str, event: Mapping[str, object]
) -> dict[str, str]:
    """Every value a hook may need, as environment variables: a script reads "$STRONGROOM_JOB"
    instead of having values pasted into its command line (the `%` codes are shell-quoted too)."""
    return {
        "STRONGROOM_JOBID": str(jcr.job_id),
        "STRONGROOM_JOB": jcr.unique,
        "STRONGROOM_NAME": jcr.name,
        "STRONGROOM_TYPE": jcr.job_type,
        "STRONGROOM_LEVEL": jcr.level,
        "STRONGROOM_CLIENT": jcr.client or "",
        "STRONGROOM_STATUS": new,
        "STRONGROOM_OLD_STATUS": old,
        "STRONGROOM_EVENT": json.dumps(dict(event), default=str),
    }


def on_status_change(
    director: HookHost,
    jcr: JobControl,
    old: str,
    new: str,
    event: Mapping[str, object] | None = None,
) -> None:
    """Queue the Job's `Run On Status Change` commands for one change; never blocks, never raises.

    A change of wait reason alone (`old == new`) runs no hooks. `event` is the published event
    (put in STRONGROOM_EVENT); without it the same fields are taken from the job.
    """
    try:
        commands = tuple(jcr.resource.run_on_status_change or ())
        if not commands or old == new:
            return
        fields = {"event": "job_status", **status_event(jcr, old, new)} if event is None else event
        env = hook_environment(jcr, old, new, fields)
        codes = {
            "i": str(jcr.job_id),
            "j": jcr.unique,
            "n": jcr.name,
            "t": jcr.job_type,
            "l": jcr.level,
            "s": new,
            "o": old,
        }
        runner = hook_runner(director)
        for template in commands:
            command = substitute(template, jcr, director.name, extra=codes)
            runner.submit(HookCall(jcr, command, env, old, new))
    except Exception:  # called from the job's status setter: a hook problem must not fail the job
        director.log.exception("status_hook_failed", job_id=jcr.job_id, old=old, new=new)
