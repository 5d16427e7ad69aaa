"""What the scheduler will do, for people: `status scheduler` and the next runs under `show schedule`."""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Final, TypedDict

from director.console.acl import first_denied, require_all, unrestricted
from director.console.registry import Args, CommandError, Reply, Session
from director.schedule.bareos import next_run, parse_run
from director.schedule.plan import FREEZER, director_zone
from director.schedule.scheduler import upcoming

if TYPE_CHECKING:
    from director.config import DirectorConfig, JobResource, ScheduleResource

DEFAULT_DAYS: Final = 7
MAX_DAYS: Final = 366
MAX_LISTED: Final = (
    500  # runs listed by `status scheduler` (a seconds schedule fires 86,400 times a day)
)
SHOW_NEXT: Final = 5  # next run times under `show schedule`
TIME_FORMAT: Final = "%a %d-%b-%Y %H:%M:%S"
_LEVEL_POOL: Final = {
    "Full": "full_backup_pool",
    "Incremental": "incremental_backup_pool",
    "Differential": "differential_backup_pool",
}


class RunSettings(TypedDict):
    """What a scheduled run will use, after its Run line's overrides and its Job's defaults."""

    type: str
    level: str
    pool: str | None
    storage: str | None
    priority: int


class ScheduledRun(RunSettings):
    """One row of `status scheduler`."""

    time: str
    local: str
    job: str
    schedule: str


class NextRun(TypedDict):
    """One next firing of a Schedule, under `show schedule`."""

    time: str
    local: str
    run: str
    overrides: dict[str, str]


def _now() -> dt.datetime:
    return dt.datetime.fromtimestamp(time.time(), dt.UTC)


def _effective(
    job: JobResource,
    level: str | None,
    pool: str | None,
    storage: str | None,
    priority: int | None,
) -> RunSettings:
    """The values a run will use: the Run line's overrides, else the Job's (pool per level as `run` does)."""
    job_type = job.type or "Backup"
    level = level or job.level or ("Incremental" if job_type == "Backup" else "")
    if pool is None and job_type == "Backup" and level in _LEVEL_POOL:
        pool = getattr(job, _LEVEL_POOL[level])
    return {
        "type": job_type,
        "level": level,
        "pool": pool or job.pool,
        "storage": storage or (job.storage[0] if job.storage else None),
        "priority": priority if priority is not None else job.priority,
    }


def _days(args: Args) -> int:
    raw = args.get("days")
    if raw is None:
        return DEFAULT_DAYS
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        raise CommandError(f"days={raw}: give a whole number of days from 1 to {MAX_DAYS}")
    return int(raw)


def _job_names(job: JobResource) -> dict[str, str | None]:
    """What a Job runs with whatever its Run line says: itself, its Client and FileSet."""
    return {"job": job.name, "client": job.client, "fileset": job.file_set}


def _visible_jobs(session: Session, wanted: str | None) -> dict[str, JobResource]:
    """The Jobs whose runs the console may see (Job, Client and FileSet ACLs), or `wanted` alone
    (a Job the console may not see is refused, naming what is forbidden)."""
    jobs = session.director.config.jobs
    if wanted is not None:
        if wanted not in jobs:
            raise CommandError(f"no Job resource named {wanted!r}")
        require_all(session, **_job_names(jobs[wanted]))
        return {wanted: jobs[wanted]}
    if unrestricted(session):
        return dict(jobs)
    return {n: j for n, j in jobs.items() if first_denied(session, _job_names(j)) is None}


def _run_visible(session: Session, row: ScheduledRun) -> bool:
    """A run is listed when the Pool and Storage it will use (the Run line's or the Job's) and the
    Schedule it comes from are permitted too (a Job's own Freezer-style schedule is the Job's)."""
    names = {"pool": row["pool"], "storage": row["storage"]}
    if row["schedule"] != FREEZER:
        names["schedule"] = row["schedule"]
    return first_denied(session, names) is None


async def status_scheduler(session: Session, args: Args) -> Reply:
    """`status scheduler [days=N] [job=NAME]`: the runs the scheduler will submit, by time."""
    config = session.director.config
    days = _days(args)
    jobs = _visible_jobs(session, args.get("job"))
    tz = director_zone(config.director.time_zone)
    after = _now()
    # only the console's Jobs are planned, so MAX_LISTED counts runs it may see
    view = config if len(jobs) == len(config.jobs) else config.model_copy(update={"jobs": jobs})
    runs = upcoming(view, after, after + dt.timedelta(days=days), tz, limit=MAX_LISTED + 1)
    rows: list[ScheduledRun] = []
    for run in runs:
        row: ScheduledRun = {
            "time": run.when.isoformat(),
            "local": run.when.astimezone(tz).strftime(TIME_FORMAT),
            "job": run.job,
            "schedule": run.schedule,
            **_effective(jobs[run.job], run.level, run.pool, run.storage, run.priority),
        }
        if _run_visible(session, row):
            rows.append(row)
    truncated = len(rows) > MAX_LISTED
    rows = rows[:MAX_LISTED]
    zone_name = config.director.time_zone or "local time"
    lines = [
        f"Scheduler Jobs (next {days} day{'s' if days != 1 else ''}, {zone_name}):",
        "",
        f"{'Time':<25} {'Level':<13} {'Type':<8} {'Job':<24} {'Pool':<14} {'Storage':<12} Schedule",
        "=" * 110,
    ]
    lines += [
        f"{r['local']:<25} {r['level']:<13} {r['type']:<8} {r['job']:<24} {r['pool'] or '*none*':<14} "
        f"{r['storage'] or '*none*':<12} {r['schedule']}"
        for r in rows
    ]
    if not rows:
        lines.append("No scheduled Jobs.")
    if truncated:
        lines.append(f"(only the first {MAX_LISTED} runs are listed)")
    lines.append("====")
    return Reply(
        text="\n".join(lines),
        data={
            "scheduler": {
                "days": days,
                "time_zone": config.director.time_zone,
                "runs": rows,
                "truncated": truncated,
            }
        },
    )


def schedule_next_runs(
    config: DirectorConfig, schedule: ScheduleResource, count: int = SHOW_NEXT
) -> list[NextRun]:
    """A Schedule's next firings (whatever Job uses it), with each one's Run-line overrides."""
    if not schedule.enabled or not schedule.run:
        return []
    tz = director_zone(config.director.time_zone)
    specs = [parse_run(line) for line in schedule.run]  # checked at load
    out: list[NextRun] = []
    after = _now()
    for _ in range(count):
        found = next_run(specs, after, tz)
        if found is None:
            break
        when, spec = found
        out.append(
            {
                "time": when.isoformat(),
                "local": when.astimezone(tz).strftime(TIME_FORMAT),
                "run": spec.text,
                "overrides": dict(spec.overrides),
            }
        )
        after = when
    return out


def next_runs_text(runs: list[NextRun], enabled: bool) -> str:
    if not enabled:
        return "  # disabled: no runs"
    if not runs:
        return "  # no runs"
    return "\n".join(f"  # next: {r['local']}  ({r['run']})" for r in runs)
