"""Next-run computation with an injected clock: every Bareos Run form, Freezer schedules, DST and leap years."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from director.schedule.bareos import ScheduleError, next_run, parse_run
from director.schedule.clock import resolve
from director.schedule.freezer import (
    FreezerScheduleError,
    OneShot,
    parse_cron,
    parse_datetime,
    parse_interval,
)

BERLIN = ZoneInfo("Europe/Berlin")
NOW = dt.datetime(2026, 3, 25, 12, 0, tzinfo=BERLIN)  # a Wednesday


def local(spec: str, after: dt.datetime = NOW, tz: dt.tzinfo = BERLIN) -> dt.datetime:
    when = parse_run(spec).next_after(after.astimezone(dt.UTC), tz)
    assert when is not None
    return when.astimezone(tz).replace(tzinfo=None)


def runs(
    spec: str, count: int, after: dt.datetime = NOW, tz: dt.tzinfo = BERLIN
) -> list[dt.datetime]:
    out, current = [], after.astimezone(dt.UTC)
    parsed = parse_run(spec)
    for _ in range(count):
        nxt = parsed.next_after(current, tz)
        assert nxt is not None
        out.append(nxt.astimezone(tz).replace(tzinfo=None))
        current = nxt
    return out


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("daily at 21:00", dt.datetime(2026, 3, 25, 21, 0)),
        ("at 11:00", dt.datetime(2026, 3, 26, 11, 0)),  # today's 11:00 has passed
        ("hourly at :15", dt.datetime(2026, 3, 25, 12, 15)),
        ("weekly at 01:00", dt.datetime(2026, 3, 29, 1, 0)),  # Sunday
        ("monthly at 01:00", dt.datetime(2026, 4, 1, 1, 0)),
        ("mon-fri at 21:00", dt.datetime(2026, 3, 25, 21, 0)),
        ("sat-sun at 08:00", dt.datetime(2026, 3, 28, 8, 0)),
        ("fri-mon at 08:00", dt.datetime(2026, 3, 27, 8, 0)),  # a range that wraps
        ("1st sat at 21:00", dt.datetime(2026, 4, 4, 21, 0)),
        ("2nd-5th sat at 21:00", dt.datetime(2026, 3, 28, 21, 0)),
        ("last fri at 20:00", dt.datetime(2026, 3, 27, 20, 0)),
        ("jun-aug 1 at 06:00", dt.datetime(2026, 6, 1, 6, 0)),
        ("15-16 at 06:00", dt.datetime(2026, 4, 15, 6, 0)),
        ("on 31 at 23:59", dt.datetime(2026, 3, 31, 23, 59)),
        ("w14 mon at 07:00", dt.datetime(2026, 3, 30, 7, 0)),
        (
            "w01 at 00:00",
            dt.datetime(2027, 1, 4, 0, 0),
        ),  # ISO week 1 of 2027 starts on Monday 4 January
        ("w53 at 00:00", dt.datetime(2026, 12, 28, 0, 0)),  # 2026 has an ISO week 53
        ("dec 25 at 9:30pm", dt.datetime(2026, 12, 25, 21, 30)),
        ("mon,wed,fri at 12:30", dt.datetime(2026, 3, 25, 12, 30)),
    ],
)
def test_run_forms(spec: str, expected: dt.datetime) -> None:
    assert local(spec) == expected


def test_a_series_of_runs() -> None:
    assert runs("Incremental mon-fri at 21:00", 3) == [
        dt.datetime(2026, 3, 25, 21),
        dt.datetime(2026, 3, 26, 21),
        dt.datetime(2026, 3, 27, 21),
    ]
    assert runs("hourly at :15", 3)[-1] == dt.datetime(2026, 3, 25, 14, 15)


def test_overrides() -> None:
    spec = parse_run(
        "Level=Full Pool=Monthly Storage=Tape Priority=5 NextPool=Offsite last sun at 23:05"
    )
    assert spec.overrides == {
        "level": "Full",
        "pool": "Monthly",
        "storage": "Tape",
        "priority": "5",
        "next_pool": "Offsite",
    }
    assert parse_run("Differential 2nd-5th sat at 21:00").overrides == {"level": "Differential"}
    assert parse_run("Level = Incremental daily at 1:00").overrides == {"level": "Incremental"}


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("fortnightly at 10:00", "unknown word"),
        ("daily at 25:00", "bad hour"),
        ("daily at noon", "bad time"),
        ("Colour=Blue daily", "unknown Run override"),
        ("Level=Weekly daily", "unknown level"),
        ("32 at 10:00", "out of range"),
        ("daily at", "must be followed"),
    ],
)
def test_bad_run_lines(spec: str, needle: str) -> None:
    with pytest.raises(ScheduleError, match=needle):
        parse_run(spec)


def test_spring_forward_gap_runs_once_at_the_end_of_the_gap() -> None:
    # Europe/Berlin 2026-03-29: 02:00 → 03:00.
    assert runs("daily at 02:30", 3, dt.datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN)) == [
        dt.datetime(2026, 3, 29, 3, 0),
        dt.datetime(2026, 3, 30, 2, 30),
        dt.datetime(2026, 3, 31, 2, 30),
    ]


def test_autumn_fall_back_hour_does_not_run_twice() -> None:
    # Europe/Berlin 2026-10-25: 03:00 → 02:00; 02:30 happens twice.
    start = dt.datetime(2026, 10, 24, 12, 0, tzinfo=BERLIN)
    instants = []
    current = start.astimezone(dt.UTC)
    spec = parse_run("daily at 02:30")
    for _ in range(2):
        nxt = spec.next_after(current, BERLIN)
        assert nxt is not None
        instants.append(nxt)
        current = nxt
    assert instants[0] == dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC)  # the first 02:30 (CEST)
    assert instants[1].astimezone(BERLIN).date() == dt.date(2026, 10, 26)
    hourly = runs("hourly at :30", 4, dt.datetime(2026, 10, 25, 1, 0, tzinfo=BERLIN))
    assert hourly == [dt.datetime(2026, 10, 25, h, 30) for h in (1, 2, 3, 4)]  # 02:30 once


def test_resolve_policy() -> None:
    assert resolve(dt.datetime(2026, 3, 29, 2, 30), BERLIN) == dt.datetime(
        2026, 3, 29, 1, 0, tzinfo=dt.UTC
    )
    assert resolve(dt.datetime(2026, 10, 25, 2, 30), BERLIN) == dt.datetime(
        2026, 10, 25, 0, 30, tzinfo=dt.UTC
    )


def test_leap_years() -> None:
    assert local("feb 29 at 12:00") == dt.datetime(2028, 2, 29, 12, 0)
    assert local("last sat feb at 10:00", dt.datetime(2028, 2, 1, tzinfo=BERLIN)) == dt.datetime(
        2028, 2, 26, 10, 0
    )
    cron = parse_cron("month=2 day=29 hour=6")
    when = cron.next_after(dt.datetime(2026, 3, 1, tzinfo=dt.UTC), BERLIN)
    assert when is not None and when.astimezone(BERLIN).date() == dt.date(2028, 2, 29)


def test_next_run_picks_the_earliest_line() -> None:
    specs = [
        parse_run("Full 1st sat at 21:00"),
        parse_run("Differential 2nd-5th sat at 21:00"),
        parse_run("Incremental mon-fri at 21:00"),
    ]
    found = next_run(specs, dt.datetime(2026, 4, 3, 22, 0, tzinfo=BERLIN), BERLIN)  # Friday night
    assert found is not None
    when, spec = found
    assert when.astimezone(BERLIN).replace(tzinfo=None) == dt.datetime(2026, 4, 4, 21, 0)
    assert spec.overrides["level"] == "Full"


def test_freezer_one_shot_interval_and_cron() -> None:
    at = parse_datetime("2026-12-24T18:00", BERLIN)
    assert at == dt.datetime(2026, 12, 24, 17, 0, tzinfo=dt.UTC)
    shot = OneShot(at)
    assert shot.next_after(NOW.astimezone(dt.UTC), BERLIN) == at
    assert shot.next_after(at, BERLIN) is None  # runs once
    start = parse_datetime("2026-03-25T00:00", BERLIN)
    end = parse_datetime("2026-03-26T00:00", BERLIN)
    every = parse_interval("6 hours", start, end)
    first = every.next_after(NOW.astimezone(dt.UTC), BERLIN)
    assert first is not None and first.astimezone(BERLIN).hour == 18
    assert every.next_after(first, BERLIN) == end
    assert every.next_after(end, BERLIN) is None  # the end date stops it
    continuous = parse_interval("continuous")
    assert continuous.next_after(at, BERLIN) == at + dt.timedelta(seconds=1)
    cron = parse_cron("day_of_week=mon-fri hour=*/6 minute=30")
    got = []
    current = dt.datetime(2026, 3, 27, 13, 0, tzinfo=BERLIN).astimezone(dt.UTC)  # Friday
    for _ in range(3):
        nxt = cron.next_after(current, BERLIN)
        assert nxt is not None
        got.append(nxt.astimezone(BERLIN).replace(tzinfo=None))
        current = nxt
    assert got == [
        dt.datetime(2026, 3, 27, 18, 30),
        dt.datetime(2026, 3, 30, 0, 30),
        dt.datetime(2026, 3, 30, 6, 30),
    ]
    cron_dst = parse_cron("hour=2 minute=30")
    spring = cron_dst.next_after(
        dt.datetime(2026, 3, 28, 12, tzinfo=BERLIN).astimezone(dt.UTC), BERLIN
    )
    assert spring is not None and spring.astimezone(BERLIN).replace(tzinfo=None) == dt.datetime(
        2026, 3, 29, 3, 0
    )


@pytest.mark.parametrize(
    ("text", "needle"),
    [("minute=61", "0..59"), ("colour=red", "bad cron field"), ("day_of_week=funday", "bad value")],
)
def test_bad_cron(text: str, needle: str) -> None:
    with pytest.raises(FreezerScheduleError, match=needle):
        parse_cron(text)


def test_bad_interval_and_date() -> None:
    with pytest.raises(FreezerScheduleError, match="bad interval"):
        parse_interval("3 fortnights")
    with pytest.raises(FreezerScheduleError, match="ISO 8601"):
        parse_datetime("next tuesday", BERLIN)
