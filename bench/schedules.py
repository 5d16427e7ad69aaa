"""Schedule benchmark: next-run computation for 10,000 schedules of every form (target: under 1 s).

    .venv/bin/python bench/schedules.py [--count 10000] [--zone Europe/Berlin] [--repeat 3]

Builds a deterministic mix of Bareos `Run =` lines (hourly, daily, weekly, monthly, day ranges,
ordinals, months, days of month, ISO weeks, leap days) and Freezer schedules (interval, cron with
steps and ranges, one-shot dates), then times: parsing them all, the next run of every one after a
fixed instant (what the scheduler does when it wakes), and the same again from an instant just
before a spring-forward gap. Prints the best of `--repeat` runs and the slowest forms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from director.schedule.bareos import parse_run
from director.schedule.freezer import OneShot, parse_cron, parse_datetime, parse_interval
from director.schedule.plan import Rule, director_zone

TARGET_SECONDS: Final = 1.0
AFTER: Final = dt.datetime(2026, 3, 25, 11, 37, 12, tzinfo=dt.UTC)
BEFORE_GAP: Final = dt.datetime(
    2026, 3, 29, 0, 45, tzinfo=dt.UTC
)  # Europe/Berlin jumps 02:00 → 03:00 at 01:00 UTC

RUN_FORMS: Final = (
    "hourly at :{m:02d}",
    "daily at {h}:{m:02d}",
    "weekly at {h}:{m:02d}",
    "monthly at {h}:{m:02d}",
    "Incremental mon-fri at {h}:{m:02d}",
    "Full 1st sat at {h}:{m:02d}",
    "Differential 2nd-5th sun at {h}:{m:02d}",
    "Level=Full Pool=Monthly Priority=5 last fri at {h}:{m:02d}",
    "jun-aug {d} at {h}:{m:02d}",
    "{d}-{d2} at {h}:{m:02d}",
    "w{w:02d} mon at {h}:{m:02d}",
    "feb 29 at {h}:{m:02d}",
    "mon,wed,fri at {h}:{m:02d}",
    "dec 25 at 9:30pm",
)
CRON_FORMS: Final = (
    "minute={m} hour=*/{step}",
    "minute=0 hour={h} day_of_week=mon-fri",
    "second=*/{s} minute=*",
    "minute=*/15",
    "month=2 day=29 hour={h}",
    "day=1,15 hour={h} minute={m}",
    "week={w} day_of_week=sun hour={h}",
)
INTERVALS: Final = (
    "continuous",
    "{n} seconds",
    "{n} minutes",
    "{n} hours",
    "{n} days",
    "{n} weeks",
)


def build(count: int, tz: dt.tzinfo, seed: int = 20260325) -> list[tuple[str, Rule]]:
    """`count` schedules: about half Bareos Run lines, the rest Freezer interval, cron and one-shot."""
    rng = random.Random(seed)
    out: list[tuple[str, Rule]] = []
    for i in range(count):
        words = {
            "m": rng.randrange(60),
            "h": rng.randrange(24),
            "d": rng.randrange(1, 28),
            "d2": 28,
            "w": rng.randrange(1, 53),
            "step": rng.choice((2, 3, 4, 6, 8, 12)),
            "s": rng.choice((1, 2, 5, 30)),
            "n": rng.randrange(1, 30),
        }
        kind = i % 10
        start = parse_datetime(
            f"2026-0{rng.randrange(1, 4)}-0{rng.randrange(1, 9)}T0{rng.randrange(10)}:00", tz
        )
        if kind < 5:
            form = RUN_FORMS[rng.randrange(len(RUN_FORMS))]
            out.append((f"run:{form}", parse_run(form.format(**words))))
        elif kind < 8:
            form = CRON_FORMS[rng.randrange(len(CRON_FORMS))]
            out.append(
                (
                    f"cron:{form}",
                    parse_cron(form.format(**words), start if rng.random() < 0.3 else None),
                )
            )
        elif kind < 9:
            form = INTERVALS[rng.randrange(len(INTERVALS))]
            out.append((f"interval:{form}", parse_interval(form.format(**words), start)))
        else:
            out.append(
                ("date", OneShot(parse_datetime(f"2026-{rng.randrange(4, 13):02d}-15T12:00", tz)))
            )
    return out


def timed(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--zone", default="Europe/Berlin")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    tz = director_zone(args.zone)

    parse_s = timed(lambda: build(args.count, tz), args.repeat)
    rules = build(args.count, tz)

    def next_all(after: dt.datetime) -> list[dt.datetime | None]:
        return [rule.next_after(after, tz) for _form, rule in rules]

    next_s = timed(lambda: next_all(AFTER), args.repeat)
    gap_s = timed(lambda: next_all(BEFORE_GAP), args.repeat)
    found = next_all(AFTER)
    soonest = min(w for w in found if w is not None)

    per_form: dict[str, list[float]] = {}
    for form, rule in rules:
        started = time.perf_counter()
        rule.next_after(AFTER, tz)
        per_form.setdefault(form, []).append(time.perf_counter() - started)
    slowest = sorted(((sum(v) / len(v), k, len(v)) for k, v in per_form.items()), reverse=True)[:5]

    print(f"schedules: {len(rules):,} ({args.zone}); forms: {len(per_form)}")
    print(f"  parse all:                    {parse_s * 1000:8.1f} ms")
    print(
        f"  next run of all:              {next_s * 1000:8.1f} ms  ({next_s / len(rules) * 1e6:.1f} µs each)"
        f"  target < {TARGET_SECONDS * 1000:.0f} ms: {'OK' if next_s < TARGET_SECONDS else 'MISSED'}"
    )
    print(f"  next run of all, before a DST gap: {gap_s * 1000:8.1f} ms")
    print(f"  soonest: {soonest.isoformat()}; with no next run: {sum(w is None for w in found)}")
    print("  slowest forms (mean per next run):")
    for mean, form, n in slowest:
        print(f"    {mean * 1e6:8.1f} µs  ×{n:<5} {form}")
    return 0 if next_s < TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
