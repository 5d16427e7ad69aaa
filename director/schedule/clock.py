"""Wall-clock times in a time zone, with one DST policy for every schedule.

- A wall-clock time that falls into a spring-forward gap (02:30 when clocks jump 02:00 → 03:00)
  runs once, at the first instant after the gap (03:00 local).
- A wall-clock time that happens twice in an autumn fall-back hour runs once, at its first
  occurrence (fold = 0).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Collection, Iterator
from typing import Final
from zoneinfo import ZoneInfo

UTC = dt.UTC
HORIZON_MONTHS: Final = 12 * 9  # how far a next run is searched: covers w53 and Feb 29 patterns


def zone(name: str | None) -> dt.tzinfo:
    """The Director's time zone: a name such as Europe/Berlin, or the machine's local zone."""
    if name:
        return ZoneInfo(name)
    local = dt.datetime.now().astimezone().tzinfo
    assert local is not None
    return local


def resolve(naive: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """The UTC instant at which a local wall-clock time happens, by the policy above."""
    first = naive.replace(tzinfo=tz, fold=0)
    offset = first.utcoffset()
    if offset is not None and offset == naive.replace(tzinfo=tz, fold=1).utcoffset():
        return (naive - offset).replace(
            tzinfo=UTC
        )  # the common case: neither in a gap nor ambiguous
    instant = first.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == naive:
        return instant  # exists (and for an ambiguous time, fold=0 is the first occurrence)
    # In a gap: the transition happened between the two readings of the wall time; find it.
    low = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    high = instant
    if low > high:
        low, high = high, low
    while high - low > dt.timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(tz).replace(tzinfo=None) > naive:
            high = mid
        else:
            low = mid
    return high.replace(microsecond=0)


def calendar_days(
    start: dt.date,
    months: Collection[int] | None = None,
    mdays: Collection[int] | None = None,
    years: Collection[int] | None = None,
) -> Iterator[dt.date]:
    """The days from `start` on, in order, within HORIZON_MONTHS, whose month, day of month and
    year are allowed (None allows all); the caller checks weekdays and weeks."""
    numbers = sorted(mdays) if mdays is not None else range(1, 32)
    year, month = start.year, start.month
    for _ in range(HORIZON_MONTHS):
        if (months is None or month in months) and (years is None or year in years):
            length = calendar.monthrange(year, month)[1]
            for number in numbers:
                if number > length:
                    break
                day = dt.date(year, month, number)
                if day >= start:
                    yield day
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
