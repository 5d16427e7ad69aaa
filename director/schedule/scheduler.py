"""The Director's scheduler: submits Jobs when their schedules fire, and applies the missed-run policy."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from common.aio import first_set
from common.logging import Log
from director.jobs.setup import RunRequest
from director.schedule.clock import UTC
from director.schedule.plan import Trigger, all_triggers, director_zone

if TYPE_CHECKING:
    from director.config import DirectorConfig, JobResource

MAX_SLEEP: Final = 300.0  # re-read the clock at least this often (wall-clock jumps, suspend)
LATE_GRACE: Final = 60.0  # a firing noticed up to this late is due, not missed
MAX_COUNTED: Final = 10_000  # firings counted per trigger and window (missed runs, upcoming)
SUBMITTED_MEMORY: Final = 4096  # (job, instant) pairs remembered against double submission
STATE_PREFIX: Final = "job:"
_SEARCH_BACK: Final = (60, 3600, 86400, 40 * 86400, 400 * 86400, 4000 * 86400)


@dataclass(frozen=True)
class Upcoming:
    """One future scheduled run: when (UTC), which Job, from which schedule, and the Run overrides."""

    when: dt.datetime
    job: str
    schedule: str
    level: str | None = None
    pool: str | None = None
    storage: str | None = None
    priority: int | None = None


def upcoming(
    config: DirectorConfig,
    after_utc: dt.datetime,
    until_utc: dt.datetime,
    tz: dt.tzinfo,
    limit: int = MAX_COUNTED,
) -> list[Upcoming]:
    """Every run in (after, until] of enabled Jobs and Schedules, by time; one per Job and instant."""
    found: list[tuple[dt.datetime, int, Trigger]] = []
    for order, trigger in enumerate(all_triggers(config, tz)):
        if trigger.continuous:
            first = trigger.next_after(after_utc - dt.timedelta(seconds=1), tz)
            if first is not None and first <= until_utc:
                found.append((first, order, trigger))
            continue
        found.extend(
            (when, order, trigger) for when in trigger.between(after_utc, until_utc, tz, limit)
        )
    found.sort(key=lambda item: (item[0], item[2].job, item[1]))
    out: list[Upcoming] = []
    seen: set[tuple[str, dt.datetime]] = set()
    for when, _order, t in found:
        if (t.job, when) not in seen:
            seen.add((t.job, when))
            out.append(Upcoming(when, t.job, t.schedule, t.level, t.pool, t.storage, t.priority))
    return out


class Submitted(Protocol):
    """What the scheduler keeps of a submitted run (a JobControl): whether it has ended."""

    @property
    def done(self) -> asyncio.Event: ...


def _finished(result: Submitted | None) -> bool:
    """Whether a submitted run has ended (a JobControl's `done` event); anything else counts as ended."""
    done = getattr(result, "done", None)
    return not isinstance(done, asyncio.Event) or done.is_set()


class Scheduler:
    """Sleeps until the next firing (or a kick after a reload, or stop) and submits a RunRequest for it."""

    upcoming = staticmethod(upcoming)

    def __init__(
        self,
        config: Callable[[], DirectorConfig],
        submit: Callable[[RunRequest], Awaitable[Submitted | None]],
        load_state: Callable[[], Awaitable[dict[str, float]]],
        save_state: Callable[[dict[str, float]], Awaitable[None]],
        log: Log,
        *,
        clock: Callable[[], float] = time.time,
        late_grace: float = LATE_GRACE,
        max_sleep: float = MAX_SLEEP,
    ) -> None:
        self._config = config
        self._submit_fn = submit
        self._load_state = load_state
        self._save_state = save_state
        self._log = log
        self._clock = clock
        self.late_grace = late_grace
        self.max_sleep = max_sleep
        self._kicked = asyncio.Event()
        self._cache: tuple[DirectorConfig, dt.tzinfo, list[Trigger]] | None = None
        self._submitted: dict[tuple[str, float], None] = {}
        self._inflight: dict[str, Submitted | None] = {}  # continuous Job -> its last submitted run
        self._continuous_last: dict[str, dt.datetime] = {}
        self.covered: float | None = None  # every firing up to this instant has been handled
        self.idle = asyncio.Event()  # set while sleeping with nothing left to do (tests wait on it)

    def kick(self) -> None:
        """Look at the configuration and the clock again now (after a reload)."""
        self.idle.clear()
        self._kicked.set()

    # -- configuration ----------------------------------------------------------------------

    def _triggers(self) -> tuple[DirectorConfig, dt.tzinfo, list[Trigger]]:
        config = self._config()
        if self._cache is None or self._cache[0] is not config:
            try:
                tz = director_zone(config.director.time_zone)
                triggers = all_triggers(config, tz)
            except (
                ValueError
            ) as exc:  # validated at load; a failure here must not stop the Director
                self._log.error("schedules_unusable", error=str(exc))
                tz, triggers = UTC, []
            self._cache = (config, tz, triggers)
        return self._cache

    # -- the loop ---------------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event) -> None:
        try:
            state = await self._load_state()
        except Exception as exc:  # task boundary: without saved state every Job starts fresh
            self._log.error("scheduler_state_unreadable", error=str(exc))
            state = {}
        now = self._clock()
        await self._catch_up(state, now)
        self.covered = now
        await self._save(now)
        self._log.info("scheduler_started", jobs=len({t.job for t in self._triggers()[2]}))
        while not stop.is_set():
            self._kicked.clear()
            now = self._clock()
            if now >= self.covered:  # an empty window still starts continuous Jobs that are free
                if await self._round(self.covered, now):
                    await self._save(now)
                self.covered = now
            await self._wait(stop)

    async def _catch_up(self, state: dict[str, float], now: float) -> None:
        """Firings in (last seen, now] of each Job with saved state were missed while the Director was down."""
        config, tz, triggers = self._triggers()
        end = dt.datetime.fromtimestamp(now, UTC)
        for name, job in config.jobs.items():
            last = state.get(STATE_PREFIX + name)
            mine = [t for t in triggers if t.job == name and not t.continuous]
            if last is None or not mine or last >= now:
                continue
            await self._job_round(
                job, mine, dt.datetime.fromtimestamp(last, UTC), end, tz=tz, grace=0.0
            )

    async def _round(self, covered: float, now: float) -> bool:
        """Handle the firings in (covered, now]; True when something was submitted."""
        config, tz, triggers = self._triggers()
        start, end = dt.datetime.fromtimestamp(covered, UTC), dt.datetime.fromtimestamp(now, UTC)
        by_job: dict[str, list[Trigger]] = {}
        for trigger in triggers:
            by_job.setdefault(trigger.job, []).append(trigger)
        submitted = False
        for name, mine in by_job.items():
            job = config.jobs.get(name)
            if job is None:
                continue
            timed = [t for t in mine if not t.continuous]
            if timed and await self._job_round(
                job, timed, start, end, tz=tz, grace=self.late_grace
            ):
                submitted = True
            for trigger in mine:
                if trigger.continuous and await self._continuous(trigger, end, tz):
                    submitted = True
        return submitted

    async def _job_round(
        self,
        job: JobResource,
        triggers: list[Trigger],
        start: dt.datetime,
        end: dt.datetime,
        *,
        tz: dt.tzinfo,
        grace: float,
    ) -> bool:
        """One Job's firings in (start, end]: late ones are missed (policy), the latest due one is submitted."""
        fired: list[tuple[dt.datetime, int, Trigger]] = []
        capped = False
        for order, trigger in enumerate(triggers):
            times = list(trigger.between(start, end, tz, MAX_COUNTED))
            if len(times) == MAX_COUNTED:
                capped = True
                latest = _latest(trigger, start, end, tz)
                if latest is not None and latest > times[-1]:
                    times.append(latest)
            fired.extend((when, order, trigger) for when in times)
        if not fired:
            return False
        fired.sort(key=lambda item: (item[0], item[1]))
        fired = [
            f for i, f in enumerate(fired) if i == 0 or f[0] != fired[i - 1][0]
        ]  # first Run line wins a tie
        cutoff = end - dt.timedelta(seconds=grace)
        due = [f for f in fired if grace > 0 and f[0] > cutoff]
        missed = fired[: len(fired) - len(due)]
        chosen = due[-1] if due else None
        if missed:
            policy = job.missed_run_policy
            self._log.warning(
                "scheduled_runs_missed",
                job=job.name,
                count=len(missed),
                at_least=capped,
                policy=policy,
                first=missed[0][0].isoformat(),
                last=missed[-1][0].isoformat(),
            )
            if policy == "run once" and chosen is None:
                chosen = missed[-1]
        if len(due) > 1:
            self._log.info("scheduled_runs_coalesced", job=job.name, count=len(due))
        if chosen is None:
            return False
        when, _order, trigger = chosen
        await self._submit(trigger, when)
        return True

    async def _continuous(self, trigger: Trigger, end: dt.datetime, tz: dt.tzinfo) -> bool:
        """A continuous Job runs again once its previous run ended (and at most once a second)."""
        if trigger.job in self._inflight and not _finished(self._inflight[trigger.job]):
            return False
        when = self._continuous_next(trigger, end, tz)
        if when is None or when > end:
            return False
        self._continuous_last[trigger.job] = end
        self._inflight[trigger.job] = await self._submit(trigger, end)
        return True

    def _continuous_next(
        self, trigger: Trigger, end: dt.datetime, tz: dt.tzinfo
    ) -> dt.datetime | None:
        last = self._continuous_last.get(trigger.job, end - dt.timedelta(seconds=1))
        return trigger.next_after(last, tz)

    async def _submit(self, trigger: Trigger, when: dt.datetime) -> Submitted | None:
        key = (trigger.job, when.timestamp())
        if key in self._submitted:
            return None
        self._submitted[key] = None
        while len(self._submitted) > SUBMITTED_MEMORY:
            del self._submitted[next(iter(self._submitted))]
        request = RunRequest(
            job=trigger.job,
            level=trigger.level,
            pool=trigger.pool,
            storage=trigger.storage,
            priority=trigger.priority,
            params={"scheduled": trigger.schedule},
        )
        try:
            result = await self._submit_fn(request)
        except (
            Exception
        ) as exc:  # task boundary: one Job that cannot start must not stop the scheduler
            self._log.error(
                "scheduled_run_failed",
                job=trigger.job,
                schedule=trigger.schedule,
                at=when.isoformat(),
                error=str(exc),
            )
            return None
        self._log.info(
            "scheduled_run_submitted",
            job=trigger.job,
            schedule=trigger.schedule,
            at=when.isoformat(),
        )
        return result

    async def _save(self, now: float) -> None:
        state = {STATE_PREFIX + name: now for name in self._config().jobs}
        try:
            await self._save_state(state)
        except Exception as exc:  # task boundary: the next round saves again
            self._log.error("scheduler_state_not_saved", error=str(exc))

    # -- sleeping ---------------------------------------------------------------------------

    def next_due(self, after: float) -> float | None:
        """The next instant (epoch seconds) after `after` at which something fires."""
        _config, tz, triggers = self._triggers()
        start = dt.datetime.fromtimestamp(after, UTC)
        best: dt.datetime | None = None
        for trigger in triggers:
            if trigger.continuous:
                if trigger.job in self._inflight and not _finished(self._inflight[trigger.job]):
                    continue  # woken by the run's end instead
                when = self._continuous_next(trigger, start, tz)
            else:
                when = trigger.next_after(start, tz)
            if when is not None and (best is None or when < best):
                best = when
        return None if best is None else best.timestamp()

    async def _wait(self, stop: asyncio.Event) -> None:
        assert self.covered is not None
        due = self.next_due(self.covered)
        delay = (
            self.max_sleep if due is None else min(self.max_sleep, max(0.0, due - self._clock()))
        )
        if delay <= 0:
            return
        events = [
            self._kicked,
            stop,
            *(r.done for r in self._inflight.values() if r is not None and not _finished(r)),
        ]
        if not self._kicked.is_set():
            self.idle.set()
        try:
            await first_set(events, timeout=delay)
        finally:
            self.idle.clear()


def _latest(
    trigger: Trigger, start: dt.datetime, end: dt.datetime, tz: dt.tzinfo
) -> dt.datetime | None:
    """The last firing in (start, end] when there are too many to walk: search back from the end."""
    for back in _SEARCH_BACK:
        low = max(start, end - dt.timedelta(seconds=back))
        times = list(trigger.between(low, end, tz, MAX_COUNTED))
        if times and len(times) < MAX_COUNTED:
            return times[-1]
        if low == start:
            break
    return None
