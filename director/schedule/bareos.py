"""The Bareos `Schedule { Run = … }` grammar, parsed into a RunSpec, and when a RunSpec fires next.

    Run = [Level=Full|Full] [Pool=P] [Storage=S] [Messages=M] [Priority=N] [FullPool=] [IncrementalPool=]
          [DifferentialPool=] [NextPool=] [Accurate=yes|no]  <when>
    <when> = hourly | daily | weekly | monthly | day names and ranges (mon-fri) | 1st..5th, last and
             ranges (2nd-5th) | month names and ranges (jan-jun) | day-of-month numbers and ranges
             (1, 15-20) | week numbers w00..w53 | at HH:MM | hourly at :MM   (comma lists allowed)

As in Bareos, `weekly` means Sundays, `monthly` the first of the month, and a Run without `at` fires
at 00:00. A date fires when every given part matches (month, day of month, weekday, week of month,
week of year); parts not given match everything.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Final

from director.schedule.clock import UTC, calendar_days, resolve

DAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS: Final = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
ORDINALS: Final = {
    "1st": 1,
    "first": 1,
    "2nd": 2,
    "second": 2,
    "3rd": 3,
    "third": 3,
    "4th": 4,
    "fourth": 4,
    "5th": 5,
    "fifth": 5,
    "last": 6,
}
LEVELS: Final = {
    "full": "Full",
    "incremental": "Incremental",
    "differential": "Differential",
    "virtualfull": "VirtualFull",
}
OVERRIDES: Final = {
    "level": "level",
    "pool": "pool",
    "storage": "storage",
    "messages": "messages",
    "priority": "priority",
    "fullpool": "full_pool",
    "incrementalpool": "incremental_pool",
    "differentialpool": "differential_pool",
    "nextpool": "next_pool",
    "accurate": "accurate",
    "spooldata": "spool_data",
}


class ScheduleError(ValueError):
    """A Run line that cannot be parsed; the message names the word."""


@dataclass(frozen=True)
class RunSpec:
    text: str
    overrides: dict[str, str] = field(default_factory=dict)
    minutes: frozenset[int] = frozenset({0})
    hours: frozenset[int] = frozenset({0})
    mdays: frozenset[int] | None = None  # 1..31
    wdays: frozenset[int] | None = None  # 0 = Monday
    months: frozenset[int] | None = None  # 1..12
    woms: frozenset[int] | None = None  # 1..5, 6 = last
    woys: frozenset[int] | None = None  # ISO week 0..53

    def matches_day(self, day: dt.date) -> bool:
        if self.months is not None and day.month not in self.months:
            return False
        if self.mdays is not None and day.day not in self.mdays:
            return False
        if self.wdays is not None and day.weekday() not in self.wdays:
            return False
        if self.woms is not None:
            nth = (day.day - 1) // 7 + 1
            last = (day + dt.timedelta(days=7)).month != day.month
            if nth not in self.woms and not (last and 6 in self.woms):
                return False
        return not (self.woys is not None and day.isocalendar().week not in self.woys)

    def next_after(self, after: dt.datetime, tz: dt.tzinfo) -> dt.datetime | None:
        """The first instant (UTC) strictly after `after` at which this Run fires, or None within the horizon."""
        start = after.astimezone(tz).date() - dt.timedelta(
            days=1
        )  # a gap-shifted run may land on the next day
        times = sorted((h, m) for h in self.hours for m in self.minutes)
        for day in calendar_days(start, self.months, self.mdays):
            if not self.matches_day(day):
                continue
            for hour, minute in times:
                instant = resolve(dt.datetime(day.year, day.month, day.day, hour, minute), tz)
                if instant > after:
                    return instant
        return None


def _range(word: str, parse: dict[str, int], span: tuple[int, int]) -> set[int]:
    """`mon`, `mon-fri`, `fri-mon` (wraps), `2nd-5th`, `1-15`, `jan-jun`."""
    low_end, high_end = span
    if "-" in word:
        a, b = word.split("-", 1)
        first, last = parse[a], parse[b]
        if first <= last:
            return set(range(first, last + 1))
        return set(range(first, high_end + 1)) | set(range(low_end, last + 1))
    return {parse[word]}


def _names(names: tuple[str, ...], base: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for i, name in enumerate(names):
        out[name] = i + base
        out[name[:3]] = i + base
    return out


_DAY_NAMES: Final = _names(DAYS, 0)
_MONTH_NAMES: Final = _names(MONTHS, 1)
_NUMBERS: Final = {str(n): n for n in range(0, 60)} | {f"{n:02d}": n for n in range(0, 60)}
_TIME: Final = re.compile(r"^(\d{1,2})?:(\d{2})(am|pm)?$")


def _tokens(text: str) -> list[str]:
    """Words, with `a = b` joined to `a=b` and comma lists split."""
    text = re.sub(r"\s*=\s*", "=", text.strip())
    words: list[str] = []
    for word in text.split():
        words.extend(w for w in word.split(",") if w)
    return words


def parse_run(text: str) -> RunSpec:
    minutes: set[int] | None = None
    hours: set[int] | None = None
    mdays: set[int] = set()
    wdays: set[int] = set()
    months: set[int] = set()
    woms: set[int] = set()
    woys: set[int] = set()
    overrides: dict[str, str] = {}
    hourly = False
    words = _tokens(text)
    i = 0
    while i < len(words):
        raw = words[i]
        word = raw.lower()
        i += 1
        if "=" in word:
            key, _, value = raw.partition("=")
            name = OVERRIDES.get(key.lower().replace(" ", ""))
            if name is None:
                raise ScheduleError(
                    f"unknown Run override {key!r} (use {', '.join(sorted(OVERRIDES))})"
                )
            if name == "level":
                value = LEVELS.get(value.lower(), "")
                if not value:
                    raise ScheduleError(f"unknown level in {raw!r}")
            overrides[name] = value
            continue
        if word in LEVELS:
            overrides["level"] = LEVELS[word]
            continue
        if word == "at":
            if i >= len(words):
                raise ScheduleError("'at' must be followed by a time, e.g. at 21:00")
            match = _TIME.match(words[i].lower())
            i += 1
            if not match:
                raise ScheduleError(f"bad time {words[i - 1]!r} after 'at' (use HH:MM or :MM)")
            hour_text, minute, ampm = match.groups()
            minute_value = int(minute)
            if minute_value > 59:
                raise ScheduleError(f"bad minute in {words[i - 1]!r}")
            minutes = {minute_value}
            if hour_text is not None:
                hour = int(hour_text)
                if ampm == "pm" and hour < 12:
                    hour += 12
                if ampm == "am" and hour == 12:
                    hour = 0
                if hour > 23:
                    raise ScheduleError(f"bad hour in {words[i - 1]!r}")
                hours = {hour}
            continue
        if word == "on":
            continue
        if word == "hourly":
            hourly = True
            continue
        if word == "daily":
            continue
        if word == "weekly":
            wdays.add(6)
            continue
        if word == "monthly":
            mdays.add(1)
            continue
        try:
            if word.split("-")[0] in _DAY_NAMES:
                wdays |= _range(word, _DAY_NAMES, (0, 6))
            elif word.split("-")[0] in _MONTH_NAMES:
                months |= _range(word, _MONTH_NAMES, (1, 12))
            elif word.split("-")[0] in ORDINALS:
                woms |= _range(word, ORDINALS, (1, 6))
            elif re.fullmatch(r"w\d{2}(-w\d{2})?", word):
                woys |= _range(word.replace("w", ""), _NUMBERS, (0, 53))
            elif re.fullmatch(r"\d{1,2}(-\d{1,2})?", word):
                days = _range(word, _NUMBERS, (1, 31))
                if not days or min(days) < 1 or max(days) > 31:
                    raise ScheduleError(f"day of month out of range in {raw!r}")
                mdays |= days
            else:
                raise ScheduleError(f"unknown word {raw!r} in Run = {text!r}")
        except KeyError as exc:
            raise ScheduleError(f"unknown range {raw!r} in Run = {text!r}") from exc
    if hourly:
        hours = set(range(24))
    return RunSpec(
        text=text,
        overrides=overrides,
        minutes=frozenset(minutes if minutes is not None else {0}),
        hours=frozenset(hours if hours is not None else {0}),
        mdays=frozenset(mdays) or None,
        wdays=frozenset(wdays) or None,
        months=frozenset(months) or None,
        woms=frozenset(woms) or None,
        woys=frozenset(woys) or None,
    )


def next_run(
    specs: list[RunSpec], after: dt.datetime, tz: dt.tzinfo
) -> tuple[dt.datetime, RunSpec] | None:
    """The earliest next firing among a Schedule's Run lines (UTC), and which line it is."""
    best: tuple[dt.datetime, RunSpec] | None = None
    for spec in specs:
        when = spec.next_after(after.astimezone(UTC), tz)
        if when is not None and (best is None or when < best[0]):
            best = (when, spec)
    return best
