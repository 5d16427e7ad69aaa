"""Freezer-style job schedules: a one-shot date, an interval, or cron-like fields, each with start/end.

    one-shot:  Schedule Date = "2026-12-24T18:00"
    interval:  Schedule Interval = "6 hours" | "continuous"   (+ Schedule Start Date / End Date)
    cron:      Schedule Cron = "minute=0 hour=*/6 day_of_week=mon-fri"   (+ start / end dates)

Cron fields (APScheduler/Freezer names): year, month, day, week (ISO), day_of_week (mon..sun or
0..6, 0 = Monday), hour, minute, second; each `*`, a number, `a-b`, a list `a,b`, or a step `*/n`,
`a-b/n`. Wall-clock times follow the DST policy of `director.schedule.clock`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from director.schedule.clock import calendar_days, resolve

FIELDS: Final = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
_BOUNDS: Final = {
    "year": (1970, 2199),
    "month": (1, 12),
    "day": (1, 31),
    "week": (1, 53),
    "day_of_week": (0, 6),
    "hour": (0, 23),
    "minute": (0, 59),
    "second": (0, 59),
}
_DOW: Final = {name: i for i, name in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))}
_MON: Final = {
    name: i + 1
    for i, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
}


class FreezerScheduleError(ValueError):
    pass


def parse_datetime(text: str, tz: dt.tzinfo) -> dt.datetime:
    """ISO 8601; a time without an offset is wall-clock time in the Director's zone."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise FreezerScheduleError(
            f"{text!r} is not an ISO 8601 date (e.g. 2026-12-24T18:00)"
        ) from exc
    if value.tzinfo is None:
        return resolve(value, tz)
    return value.astimezone(dt.UTC)


def _value(name: str, word: str) -> int:
    table = _DOW if name == "day_of_week" else _MON if name == "month" else {}
    if word.lower() in table:
        return table[word.lower()]
    if not word.isdigit():
        raise FreezerScheduleError(f"bad value {word!r} for {name}")
    return int(word)


def parse_field(name: str, text: str) -> frozenset[int] | None:
    """One cron field; None means every value."""
    low, high = _BOUNDS[name]
    if text.strip() == "*":
        return None
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.strip().partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise FreezerScheduleError(f"bad step in {part!r}")
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            first, last = _value(name, a), _value(name, b)
        else:
            first = last = _value(name, base)
            if step_text:
                last = high
        if not (low <= first <= high and low <= last <= high) or first > last:
            raise FreezerScheduleError(f"{name}={text}: values must lie in {low}..{high}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class OneShot:
    at: dt.datetime

    def next_after(self, after: dt.datetime, tz: dt.tzinfo) -> dt.datetime | None:
        return self.at if self.at > after else None


@dataclass(frozen=True)
class Interval:
    every: dt.timedelta | None  # None = continuous: run again as soon as the previous run ended
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def next_after(self, after: dt.datetime, tz: dt.tzinfo) -> dt.datetime | None:
        if self.every is None:
            candidate = max(after + dt.timedelta(seconds=1), self.start or after)
        elif self.start is None or after < self.start:
            candidate = self.start if self.start is not None else after + self.every
        else:
            periods = (after - self.start) // self.every + 1
            candidate = self.start + periods * self.every
        if self.end is not None and candidate > self.end:
            return None
        return candidate


@dataclass(frozen=True)
class Cron:
    fields: dict[str, frozenset[int] | None]
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def _day_ok(self, day: dt.date) -> bool:
        """Weekday and ISO week (year, month and day of month are filtered by the loops)."""
        dows, weeks = self.fields.get("day_of_week"), self.fields.get("week")
        if dows is not None and day.weekday() not in dows:
            return False
        return weeks is None or day.isocalendar().week in weeks

    def next_after(self, after: dt.datetime, tz: dt.tzinfo) -> dt.datetime | None:
        if self.start is not None and after < self.start:
            after = self.start - dt.timedelta(seconds=1)
        f = self.fields
        hours = _values(f.get("hour"), range(24))
        minutes = _values(f.get("minute"), range(60))
        seconds = _values(f.get("second"), (0,))
        start_day = after.astimezone(tz).date() - dt.timedelta(days=1)
        for day in calendar_days(start_day, f.get("month"), f.get("day"), f.get("year")):
            if not self._day_ok(day):
                continue
            y, mo, d = day.year, day.month, day.day
            # resolve() never goes backwards in wall time, so an hour (or minute) whose last
            # candidate is not after `after` is skipped whole: a seconds cron stays cheap.
            if resolve(dt.datetime(y, mo, d, hours[-1], minutes[-1], seconds[-1]), tz) <= after:
                continue
            for hour in hours:
                if resolve(dt.datetime(y, mo, d, hour, minutes[-1], seconds[-1]), tz) <= after:
                    continue
                for minute in minutes:
                    if resolve(dt.datetime(y, mo, d, hour, minute, seconds[-1]), tz) <= after:
                        continue
                    for second in seconds:
                        instant = resolve(dt.datetime(y, mo, d, hour, minute, second), tz)
                        if instant > after:
                            if self.end is not None and instant > self.end:
                                return None
                            return instant
        return None


def parse_cron(text: str, start: dt.datetime | None = None, end: dt.datetime | None = None) -> Cron:
    fields: dict[str, frozenset[int] | None] = {}
    for item in text.split():
        name, sep, value = item.partition("=")
        if not sep or name not in FIELDS:
            raise FreezerScheduleError(
                f"bad cron field {item!r} (use {', '.join(FIELDS)} as name=value)"
            )
        fields[name] = parse_field(name, value)
    # Like APScheduler: fields finer than the finest given one default to their minimum.
    given = [name for name in FIELDS if name in fields]
    finest = max((FIELDS.index(n) for n in given), default=-1)
    for name in FIELDS[finest + 1 :]:
        if name in ("hour", "minute", "second"):
            fields.setdefault(name, frozenset({0}))
    return Cron(fields, start, end)


_INTERVAL: Final = re.compile(
    r"^\s*(\d+)\s*(weeks?|days?|hours?|minutes?|seconds?)\s*$", re.IGNORECASE
)


def parse_interval(
    text: str, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> Interval:
    if text.strip().lower() == "continuous":
        return Interval(None, start, end)
    match = _INTERVAL.match(text)
    if not match:
        raise FreezerScheduleError(
            f"bad interval {text!r} (use continuous or N weeks|days|hours|minutes|seconds)"
        )
    count, unit = int(match.group(1)), match.group(2).lower().rstrip("s") + "s"
    if count < 1:
        raise FreezerScheduleError("an interval must be at least 1")
    return Interval(dt.timedelta(**{unit: count}), start, end)


def _values(field: Iterable[int] | None, every: Iterable[int]) -> list[int]:
    """The sorted values a cron field allows; None means every value."""
    return sorted(every if field is None else field)
