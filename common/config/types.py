"""Value types of the Bareos syntax: sizes, durations, booleans (pure parsers raising ValueError)."""

from __future__ import annotations

import re
from typing import Annotated, Final

SIZE_UNITS: Final[dict[str, int]] = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1000,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1000**4,
    "tib": 1024**4,
    "p": 1024**5,
    "pb": 1000**5,
    "pib": 1024**5,
    "e": 1024**6,
    "eb": 1000**6,
    "eib": 1024**6,
}
DURATION_UNITS: Final[dict[str, float]] = {}
for _names, _secs in (
    (("s", "sec", "secs", "second", "seconds"), 1),
    (("n", "min", "mins", "minute", "minutes"), 60),
    (("h", "hour", "hours"), 3600),
    (("d", "day", "days"), 86400),
    (("w", "week", "weeks"), 7 * 86400),
    (("m", "month", "months"), 30 * 86400),
    (("q", "quarter", "quarters"), 91 * 86400),
    (("y", "year", "years"), 365 * 86400),
):
    for _name in _names:
        DURATION_UNITS[_name] = float(_secs)

TRUE_WORDS: Final = frozenset({"yes", "true", "on", "1"})
FALSE_WORDS: Final = frozenset({"no", "false", "off", "0"})
_PAIR: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


SIZE: Final = _Marker("SIZE")
DURATION: Final = _Marker("DURATION")
Size = Annotated[int, SIZE]
Duration = Annotated[float, DURATION]


def parse_size(text: str) -> int:
    """`50G` → 53687091200, `10 MB` → 10000000, `512` → 512 (k = 1024, kb = 1000)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match:
        raise ValueError(f"{text!r} is not a size (examples: 512, 100k, 10 MB, 50G)")
    unit = match.group(2).lower()
    if unit not in SIZE_UNITS:
        raise ValueError(f"unknown size unit {match.group(2)!r} (use k, kb, m, mb, g, gb, t, tb)")
    return int(float(match.group(1)) * SIZE_UNITS[unit])


def parse_duration(text: str) -> float:
    """`365 days`, `1 week 2 days`, `90 min`, `1h`, bare seconds; returns seconds."""
    pos = 0
    total = 0.0
    text = text.strip()
    if not text:
        raise ValueError("empty duration")
    while pos < len(text):
        match = _PAIR.match(text, pos)
        if not match or match.end() == pos:
            raise ValueError(
                f"{text!r} is not a duration (examples: 30 seconds, 90 min, 365 days, 1 week 2 days)"
            )
        unit = match.group(2).lower() or "s"
        if unit not in DURATION_UNITS:
            raise ValueError(f"unknown time unit {match.group(2)!r} in {text!r}")
        total += float(match.group(1)) * DURATION_UNITS[unit]
        pos = match.end()
    return total


def parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{text!r} is not a boolean (use yes or no)")
