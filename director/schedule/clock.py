"""Wall-clock times in a time zone, with one DST policy for every schedule.

- A wall-clock time that falls into a spring-forward gap (02:30 when clocks jump 02:00 → 03:00)
  runs once, at the first instant after the gap (03:00 local).
- A wall-clock time that happens twice in an autumn fall-back hour runs once, at its first
  occurrence (fold = 0).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

UTC = dt.UTC


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
        return (naive - offset).replace(tzinfo=UTC)  # the common case: neither in a gap nor ambiguous
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
