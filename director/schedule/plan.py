"""Schedule objects built from configuration: when each Job fires, with which overrides, and load-time checks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from common.config.errors import ConfigError
from director.schedule.bareos import RunSpec, parse_run
from director.schedule.clock import zone
from director.schedule.freezer import (
    FIELDS,
    FreezerScheduleError,
    OneShot,
    parse_cron,
    parse_datetime,
    parse_interval,
)

if TYPE_CHECKING:
    from director.config import DirectorConfig, JobResource

FREEZER: Final = "freezer"  # the schedule name of a Job's own Freezer-style schedule
POOL_OVERRIDES: Final = ("pool", "full_pool", "incremental_pool", "differential_pool", "next_pool")
_LEVEL_POOLS: Final = {
    "Full": "full_pool",
    "Incremental": "incremental_pool",
    "Differential": "differential_pool",
}
_CRON_DIRECTIVES: Final = tuple(f"schedule_{name}" for name in FIELDS)


class Rule(Protocol):
    def next_after(self, after: dt.datetime, tz: dt.tzinfo) -> dt.datetime | None: ...


class SchedulePlanError(ValueError):
    """A Job's schedule directives that do not make a schedule; names the directive at fault."""

    def __init__(self, message: str, directive: str) -> None:
        super().__init__(message)
        self.directive = directive


@dataclass(frozen=True)
class Trigger:
    """One source of runs for one Job: a Schedule's Run line, or the Job's Freezer schedule."""

    job: str
    schedule: str  # Schedule name, or "freezer"
    text: str  # the Run line or the Freezer directives, for people
    rule: Rule
    level: str | None = None
    pool: str | None = None
    storage: str | None = None
    priority: int | None = None
    continuous: bool = False  # Freezer "continuous": run again as soon as the previous run ended

    def next_after(self, after: dt.datetime, tz: dt.tzinfo) -> dt.datetime | None:
        return self.rule.next_after(after, tz)

    def between(
        self, after: dt.datetime, until: dt.datetime, tz: dt.tzinfo, limit: int
    ) -> Iterator[dt.datetime]:
        """Firings in (after, until], at most `limit` of them."""
        current = after
        for _ in range(limit):
            nxt = self.rule.next_after(current, tz)
            if nxt is None or nxt > until:
                return
            yield nxt
            current = nxt


def director_zone(name: str | None) -> dt.tzinfo:
    """The Director's `Time Zone` (an IANA name), or the machine's zone; ValueError names a bad one."""
    try:
        return zone(name)
    except (KeyError, ValueError, OSError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(
            f"unknown Time Zone {name!r} (use an IANA name such as Europe/Berlin or UTC)"
        ) from exc


def check_run(text: str) -> RunSpec:
    """Parse one `Run =` line; ValueError says what is wrong with it."""
    spec = parse_run(text)
    priority = spec.overrides.get("priority")
    if priority is not None and not priority.isdigit():
        raise ValueError(f"Priority={priority} in Run = {text!r} is not a whole number")
    return spec


def _cron_text(job: JobResource) -> tuple[str | None, str | None]:
    """The cron spec from `Schedule Cron` or the individual fields, and the directive it came from."""
    fields = {
        name: getattr(job, directive)
        for name, directive in zip(FIELDS, _CRON_DIRECTIVES, strict=True)
    }
    given = {
        name: "".join(str(value).split()) for name, value in fields.items() if value is not None
    }
    if job.schedule_cron is not None and given:
        first = next(iter(given))
        raise SchedulePlanError(
            f"Job {job.name!r} sets both Schedule Cron and Schedule {_title(first)}; use one form",
            "Schedule Cron",
        )
    if job.schedule_cron is not None:
        return job.schedule_cron, "Schedule Cron"
    if given:
        return " ".join(
            f"{name}={value}" for name, value in given.items()
        ), f"Schedule {_title(next(iter(given)))}"
    return None, None


def _title(field: str) -> str:
    return " ".join(part.capitalize() for part in field.split("_"))


def freezer_trigger(job: JobResource, tz: dt.tzinfo) -> Trigger | None:
    """The Job's own Freezer-style schedule (one-shot date, interval or cron), or None when it has none."""
    cron, cron_directive = _cron_text(job)
    kinds = [
        d
        for d, v in (
            ("Schedule Date", job.schedule_date),
            ("Schedule Interval", job.schedule_interval),
            (cron_directive, cron),
        )
        if v is not None and d is not None
    ]
    if len(kinds) > 1:
        raise SchedulePlanError(
            f"Job {job.name!r} sets {' and '.join(kinds)}; a Job has at most one of "
            "Schedule Date, Schedule Interval and Schedule Cron",
            kinds[1],
        )
    directive = "Schedule Start Date"
    try:
        start = (
            parse_datetime(job.schedule_start_date, tz)
            if job.schedule_start_date is not None
            else None
        )
        directive = "Schedule End Date"
        end = (
            parse_datetime(job.schedule_end_date, tz) if job.schedule_end_date is not None else None
        )
        if not kinds:
            if start is not None or end is not None:
                raise SchedulePlanError(
                    f"Job {job.name!r}: Schedule Start/End Date need Schedule Interval or "
                    "Schedule Cron",
                    "Schedule Start Date" if start else "Schedule End Date",
                )
            return None
        if start is not None and end is not None and end <= start:
            raise SchedulePlanError(
                f"Job {job.name!r}: Schedule End Date is not after Schedule Start Date",
                "Schedule End Date",
            )
        directive = kinds[0]
        if job.schedule_date is not None:
            if start is not None or end is not None:
                raise SchedulePlanError(
                    f"Job {job.name!r}: Schedule Start/End Date do not apply to a one-shot "
                    "Schedule Date",
                    "Schedule Date",
                )
            return Trigger(
                job.name,
                FREEZER,
                f"date {job.schedule_date}",
                OneShot(parse_datetime(job.schedule_date, tz)),
            )
        if job.schedule_interval is not None:
            interval = parse_interval(job.schedule_interval, start, end)
            return Trigger(
                job.name,
                FREEZER,
                f"interval {job.schedule_interval}",
                interval,
                continuous=interval.every is None,
            )
        assert cron is not None
        return Trigger(job.name, FREEZER, f"cron {cron}", parse_cron(cron, start, end))
    except FreezerScheduleError as exc:
        raise SchedulePlanError(f"Job {job.name!r}: {exc}", directive) from exc


def run_trigger(job: JobResource, schedule: str, spec: RunSpec) -> Trigger:
    """A Run line applied to a Job: the level override, and the pool that level uses (Bareos FullPool= etc.)."""
    over = spec.overrides
    level = over.get("level")
    pool = over.get("pool")
    level_pool = _LEVEL_POOLS.get(level or job.level or "Incremental")
    if pool is None and level_pool is not None:
        pool = over.get(level_pool)
    priority = over.get("priority")
    return Trigger(
        job.name,
        schedule,
        spec.text,
        spec,
        level=level,
        pool=pool,
        storage=over.get("storage"),
        priority=int(priority) if priority is not None else None,
    )


def job_triggers(
    config: DirectorConfig, job: JobResource, tz: dt.tzinfo | None = None
) -> list[Trigger]:
    """Every source of runs for an enabled Job: its Schedule's Run lines (if enabled), then its Freezer schedule."""
    if not job.enabled:
        return []
    tz = tz if tz is not None else director_zone(config.director.time_zone)
    out: list[Trigger] = []
    schedule = config.schedules.get(job.schedule) if job.schedule else None
    if schedule is not None and schedule.enabled:
        out.extend(run_trigger(job, schedule.name, check_run(line)) for line in schedule.run)
    freezer = freezer_trigger(job, tz)
    if freezer is not None:
        out.append(freezer)
    return out


def all_triggers(config: DirectorConfig, tz: dt.tzinfo | None = None) -> list[Trigger]:
    tz = tz if tz is not None else director_zone(config.director.time_zone)
    return [t for job in config.jobs.values() for t in job_triggers(config, job, tz)]


def check_schedules(config: DirectorConfig) -> None:
    """Load-time checks beyond one Run line's grammar: override references and Freezer directives."""
    tz = director_zone(config.director.time_zone)
    tables: dict[str, tuple[str, Any]] = dict.fromkeys(POOL_OVERRIDES, ("Pool", config.pools))
    tables |= {"storage": ("Storage", config.storages), "messages": ("Messages", config.messages)}
    for schedule in config.schedules.values():
        for line in schedule.run:
            try:
                spec = check_run(line)
            except (
                ValueError
            ) as exc:  # the directive hook has already reported these with their own line
                raise ConfigError.at(schedule.source, str(exc), "Run") from exc
            for key, value in spec.overrides.items():
                if key in tables and value not in tables[key][1]:
                    kind, table = tables[key]
                    known = ", ".join(sorted(table)) or "none defined"
                    raise ConfigError.at(
                        schedule.source,
                        f"Run = {line!r} refers to {kind} {value!r}, which does "
                        f"not exist (known: {known})",
                        "Run",
                    )
    for job in (*config.jobdefs.values(), *config.jobs.values()):
        try:
            freezer_trigger(job, tz)
        except SchedulePlanError as exc:
            raise ConfigError.at(job.source, str(exc), exc.directive) from exc
