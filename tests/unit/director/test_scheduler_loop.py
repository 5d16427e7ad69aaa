"""The scheduler with a fake clock that jumps: due runs, overrides, missed runs, DST days, reloads."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from director.config import load_director_config
from director.jobs.setup import RunRequest
from director.schedule.scheduler import Scheduler, upcoming

BERLIN = ZoneInfo("Europe/Berlin")

BASE = """\
Director {{ Name = dir1; Password = "x"; Time Zone = {zone} }}
Client {{ Name = fd1; Address = 127.0.0.1; Password = "fd" }}
Storage {{ Name = File; Address = 127.0.0.1; Password = "sd"; Device = D; Media Type = File }}
Storage {{ Name = Tape; Address = 127.0.0.1; Password = "sd"; Device = T; Media Type = LTO }}
Pool {{ Name = Full; Pool Type = Backup }}
Pool {{ Name = Inc; Pool Type = Backup }}
FileSet {{ Name = fs; Include {{ File = /etc }} }}
JobDefs {{ Name = base; Type = Backup; Level = Incremental; Client = fd1; FileSet = fs; Pool = Inc; Storage = File }}
"""


def utc(*parts: int) -> float:
    return dt.datetime(*parts, tzinfo=dt.UTC).timestamp()  # type: ignore[misc]


def berlin(*parts: int, fold: int = 0) -> float:
    return dt.datetime(*parts, tzinfo=BERLIN, fold=fold).timestamp()  # type: ignore[misc]


class FakeLog:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def _add(self, level: str, event: str, **kw: Any) -> None:
        self.events.append((level, event, kw))

    def info(self, event: str, **kw: Any) -> None:
        self._add("info", event, **kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._add("warning", event, **kw)

    def error(self, event: str, **kw: Any) -> None:
        self._add("error", event, **kw)

    def named(self, event: str) -> list[dict[str, Any]]:
        return [kw for _level, name, kw in self.events if name == event]


class Harness:
    """A scheduler on a fake clock; `at(t)` jumps the clock, kicks, and waits until the scheduler sleeps again."""

    def __init__(
        self,
        tmp_path: Path,
        conf: str,
        now: float,
        state: dict[str, float] | None = None,
        zone: str = "UTC",
    ) -> None:
        self.tmp_path = tmp_path
        self.zone = zone
        self.config = self.load(conf)
        self.now = now
        self.state = dict(state or {})
        self.saved: list[dict[str, float]] = []
        self.submitted: list[RunRequest] = []
        self.fail_next = False
        self.results: list[Any] = []
        self.log = FakeLog()
        self.stop = asyncio.Event()
        self.scheduler = Scheduler(
            lambda: self.config,
            self.submit,
            self.load_state,
            self.save_state,
            self.log,
            clock=lambda: self.now,
        )

    def load(self, conf: str) -> Any:
        path = self.tmp_path / f"dir-{len(list(self.tmp_path.iterdir()))}.conf"
        path.write_text(BASE.format(zone=self.zone) + conf)
        return load_director_config(path).config

    async def submit(self, req: RunRequest) -> Any:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("no such client today")
        self.submitted.append(req)
        return self.results.pop(0) if self.results else None

    async def load_state(self) -> dict[str, float]:
        return dict(self.state)

    async def save_state(self, state: dict[str, float]) -> None:
        self.saved.append(dict(state))
        self.state.update(state)

    async def settle(self) -> None:
        await asyncio.wait_for(self.scheduler.idle.wait(), timeout=2)

    async def at(self, when: float) -> list[RunRequest]:
        """Jump the clock to `when`; return what was submitted because of it."""
        before = len(self.submitted)
        self.now = when
        self.scheduler.kick()
        await self.settle()
        return self.submitted[before:]


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Any]:
    tasks: list[tuple[Harness, asyncio.Task[None]]] = []

    async def start(
        conf: str, now: float, state: dict[str, float] | None = None, zone: str = "UTC"
    ) -> Harness:
        h = Harness(tmp_path, conf, now, state, zone)
        tasks.append((h, asyncio.create_task(h.scheduler.serve(h.stop))))
        await h.settle()
        return h

    yield start
    for h, task in tasks:
        h.stop.set()
        await asyncio.wait_for(task, timeout=2)


WEEKLY = """\
Schedule {
  Name = Cycle
  Run = Level=Full Pool=Full Storage=Tape Priority=5 sun at 02:00
  Run = Incremental mon-sat at 02:00
  Run = hourly at :30
}
Job { Name = nightly; JobDefs = base; Schedule = Cycle }
"""


async def test_due_runs_are_submitted_with_their_overrides(running: Any) -> None:
    h = await running(WEEKLY, utc(2026, 3, 28, 1, 0))  # Saturday
    assert h.submitted == []  # no saved state: a fresh start, no catch-up
    assert h.saved[-1] == {"job:nightly": utc(2026, 3, 28, 1, 0)}
    assert await h.at(utc(2026, 3, 28, 1, 29, 59)) == []
    (half,) = await h.at(utc(2026, 3, 28, 1, 30, 2))  # a little late is still due
    assert (half.job, half.level, half.pool, half.storage, half.priority) == (
        "nightly",
        None,
        None,
        None,
        None,
    )
    assert half.params == {"scheduled": "Cycle"}
    (sat,) = await h.at(utc(2026, 3, 28, 2, 0))
    assert (sat.level, sat.pool, sat.storage, sat.priority) == ("Incremental", None, None, None)
    assert h.saved[-1] == {"job:nightly": utc(2026, 3, 28, 2, 0)}  # state saved after the round
    (sun,) = await h.at(utc(2026, 3, 29, 2, 0, 30))
    assert (sun.level, sun.pool, sun.storage, sun.priority) == ("Full", "Full", "Tape", 5)
    assert h.log.named("scheduled_runs_missed")[0]["count"] == 24  # :30 of every hour was overslept
    assert await h.at(utc(2026, 3, 29, 2, 0, 30)) == []  # the same instant is never submitted twice


async def test_lines_firing_at_the_same_instant_submit_once(running: Any) -> None:
    h = await running(
        "Schedule { Name = S; Run = Full daily at 03:00; Run = Incremental daily at 03:00 }\n"
        "Job { Name = j; JobDefs = base; Schedule = S }\n",
        utc(2026, 3, 25, 2, 0),
    )
    (run,) = await h.at(utc(2026, 3, 25, 3, 0))
    assert run.level == "Full"  # the first Run line wins


async def test_missed_runs_run_once_with_the_latest_overrides(running: Any) -> None:
    conf = WEEKLY.replace("  Run = hourly at :30\n", "")
    h = await running(conf, utc(2026, 3, 29, 12, 0), state={"job:nightly": utc(2026, 3, 26, 12, 0)})
    (run,) = h.submitted  # Fri, Sat and Sun 02:00 were missed: one run, with Sunday's overrides
    assert (run.level, run.pool, run.storage, run.priority) == ("Full", "Full", "Tape", 5)
    (missed,) = h.log.named("scheduled_runs_missed")
    assert missed["count"] == 3 and missed["policy"] == "run once" and missed["job"] == "nightly"
    assert h.saved[-1] == {"job:nightly": utc(2026, 3, 29, 12, 0)}
    (mon,) = await h.at(utc(2026, 3, 30, 2, 0))  # then it carries on as usual
    assert mon.level == "Incremental"


async def test_missed_runs_skip(running: Any) -> None:
    conf = WEEKLY.replace("Schedule = Cycle", 'Schedule = Cycle; Missed Run Policy = "skip"')
    h = await running(conf, utc(2026, 3, 29, 12, 0), state={"job:nightly": utc(2026, 3, 29, 1, 0)})
    assert h.submitted == []
    (missed,) = h.log.named("scheduled_runs_missed")
    assert (
        missed["count"] == 12 and missed["policy"] == "skip"
    )  # 02:00 and the :30s from 01:30 to 11:30


async def test_no_missed_runs_when_nothing_fired_while_down(running: Any) -> None:
    h = await running(
        WEEKLY, utc(2026, 3, 28, 1, 10), state={"job:nightly": utc(2026, 3, 28, 0, 40)}
    )
    assert h.submitted == []
    assert h.log.named("scheduled_runs_missed") == []


async def test_too_many_missed_runs_are_counted_up_to_a_cap(running: Any) -> None:
    h = await running(
        'Job { Name = j; JobDefs = base; Schedule Interval = "1 second" }\n',
        utc(2026, 3, 25, 12, 0),
        state={"job:j": utc(2026, 3, 24, 12, 0)},
    )
    assert len(h.submitted) == 1
    (missed,) = h.log.named("scheduled_runs_missed")
    assert missed["at_least"] and missed["last"] == "2026-03-25T12:00:00+00:00"


async def test_spring_forward_day_runs_once_at_the_end_of_the_gap(running: Any) -> None:
    conf = "Schedule { Name = S; Run = daily at 02:30 }\nJob { Name = j; JobDefs = base; Schedule = S }\n"
    h = await running(conf, berlin(2026, 3, 28, 12, 0), zone="Europe/Berlin")
    assert await h.at(berlin(2026, 3, 29, 1, 59)) == []
    (run,) = await h.at(berlin(2026, 3, 29, 3, 0))  # 02:30 does not exist; 03:00 CEST = 01:00 UTC
    assert run.job == "j"
    assert await h.at(berlin(2026, 3, 29, 23, 0)) == []
    assert len(await h.at(berlin(2026, 3, 30, 2, 30))) == 1


async def test_fall_back_day_runs_once_at_the_first_occurrence(running: Any) -> None:
    conf = "Schedule { Name = S; Run = daily at 02:30 }\nJob { Name = j; JobDefs = base; Schedule = S }\n"
    h = await running(conf, berlin(2026, 10, 24, 12, 0), zone="Europe/Berlin")
    assert len(await h.at(berlin(2026, 10, 25, 2, 30))) == 1  # 00:30 UTC
    assert await h.at(berlin(2026, 10, 25, 2, 30, fold=1)) == []  # 01:30 UTC, 02:30 again
    assert await h.at(berlin(2026, 10, 25, 23, 0)) == []


async def test_reload_via_kick(running: Any) -> None:
    h = await running(WEEKLY, utc(2026, 3, 28, 1, 0))
    h.config = h.load(
        WEEKLY.replace("Schedule = Cycle", "Schedule = Cycle; Enabled = no")
        + 'Job { Name = extra; JobDefs = base; Schedule Interval = "10 minutes" }\n'
    )
    assert await h.at(utc(2026, 3, 28, 1, 0, 1)) == []  # the kick re-reads the configuration
    (run,) = await h.at(utc(2026, 3, 28, 1, 10, 1))
    assert run.job == "extra" and run.params == {"scheduled": "freezer"}
    # 01:20 was overslept (missed, coalesced), 01:30 is due; nightly's schedule is disabled now
    assert [r.job for r in await h.at(utc(2026, 3, 28, 1, 30))] == ["extra"]
    assert h.saved[-1] == {
        "job:nightly": utc(2026, 3, 28, 1, 30),
        "job:extra": utc(2026, 3, 28, 1, 30),
    }


async def test_a_failing_submit_is_logged_and_the_loop_goes_on(running: Any) -> None:
    h = await running(WEEKLY, utc(2026, 3, 28, 1, 0))
    h.fail_next = True
    assert await h.at(utc(2026, 3, 28, 1, 30)) == []
    (failed,) = h.log.named("scheduled_run_failed")
    assert failed["job"] == "nightly" and "no such client" in failed["error"]
    assert len(await h.at(utc(2026, 3, 28, 2, 0))) == 1


async def test_state_that_cannot_be_read_means_a_fresh_start(running: Any, tmp_path: Path) -> None:
    h = Harness(tmp_path, WEEKLY, utc(2026, 3, 28, 1, 0))

    async def broken() -> dict[str, float]:
        raise RuntimeError("catalog is locked")

    h.scheduler._load_state = broken
    task = asyncio.create_task(h.scheduler.serve(h.stop))
    await h.settle()
    assert h.log.named("scheduler_state_unreadable")
    assert len(await h.at(utc(2026, 3, 28, 1, 30))) == 1
    h.stop.set()
    await asyncio.wait_for(task, timeout=2)


class FakeRun:
    def __init__(self) -> None:
        self.done = asyncio.Event()


async def test_continuous_runs_again_when_the_previous_run_ended(
    running: Any, tmp_path: Path
) -> None:
    h = Harness(
        tmp_path,
        "Job { Name = c; JobDefs = base; Schedule Interval = continuous }\n",
        utc(2026, 3, 28, 1, 0),
    )
    first, second = FakeRun(), FakeRun()
    h.results = [first, second]
    task = asyncio.create_task(h.scheduler.serve(h.stop))
    await h.settle()
    assert len(h.submitted) == 1
    assert await h.at(utc(2026, 3, 28, 1, 5)) == []  # still running
    first.done.set()
    h.scheduler.idle.clear()
    await h.settle()
    assert len(h.submitted) == 2
    h.stop.set()
    await asyncio.wait_for(task, timeout=2)


def test_upcoming_is_sorted_and_skips_disabled(tmp_path: Path) -> None:
    h = Harness(
        tmp_path,
        WEEKLY.replace("  Run = hourly at :30\n", "")
        + "Job { Name = off; JobDefs = base; Schedule = Cycle; Enabled = no }\n"
        + "Schedule { Name = Never; Enabled = no; Run = hourly }\n"
        + "Job { Name = never; JobDefs = base; Schedule = Never }\n"
        + 'Job { Name = once; JobDefs = base; Schedule Date = "2026-03-29T01:00:00+00:00" }\n',
        utc(2026, 3, 27, 12, 0),
        zone="Europe/Berlin",
    )
    after = dt.datetime(2026, 3, 27, 12, 0, tzinfo=dt.UTC)
    got = upcoming(h.config, after, after + dt.timedelta(days=3), BERLIN)
    assert [
        (u.job, u.schedule, u.when.astimezone(BERLIN).strftime("%a %H:%M"), u.level) for u in got
    ] == [
        ("nightly", "Cycle", "Sat 02:00", "Incremental"),
        (
            "nightly",
            "Cycle",
            "Sun 03:00",
            "Full",
        ),  # 02:00 is in the spring-forward gap: the end of the gap
        ("once", "freezer", "Sun 03:00", None),
        ("nightly", "Cycle", "Mon 02:00", "Incremental"),
    ]
    assert got[1].pool == "Full" and got[1].storage == "Tape" and got[1].priority == 5
    assert Scheduler.upcoming is upcoming


def _series(spec: str, after: dt.datetime, count: int) -> list[str]:
    from director.schedule.freezer import parse_cron

    cron, out = parse_cron(spec), []
    for _ in range(count):
        nxt = cron.next_after(after, BERLIN)
        assert nxt is not None
        out.append(nxt.strftime("%H:%M:%S"))
        after = nxt
    return out


def test_a_seconds_cron_across_dst_changes() -> None:
    # spring: local 02:00:00 .. 02:59:30 do not exist; they run once, at 03:00 CEST (01:00 UTC)
    assert _series("second=*/30 minute=*", dt.datetime(2026, 3, 29, 0, 58, tzinfo=dt.UTC), 5) == [
        "00:58:30",
        "00:59:00",
        "00:59:30",
        "01:00:00",
        "01:00:30",
    ]
    # autumn: local 02:xx happens twice; only the first (CEST) hour runs
    assert _series("second=*/30 minute=*", dt.datetime(2026, 10, 25, 0, 59, tzinfo=dt.UTC), 3) == [
        "00:59:30",
        "02:00:00",
        "02:00:30",
    ]
