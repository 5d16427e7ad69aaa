"""Schedules in the Director's configuration: Run lines, Freezer directives and the time zone, checked at load."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from common.config import ConfigError
from director.config import load_director_config
from director.schedule.plan import FREEZER, job_triggers

BASE = """\
Director { Name = dir1; Password = "dir-secret"; Time Zone = Europe/Berlin }
Catalog { Name = cat; dbname = strongroom }
Messages { Name = Standard; console = all }
Client { Name = fd1; Address = 127.0.0.1; Password = "fd-secret" }
Storage { Name = File; Address = 127.0.0.1; Password = "sd-secret"; Device = FileStorage; Media Type = File }
Storage { Name = Tape; Address = 127.0.0.1; Password = "sd-secret"; Device = TapeDrive; Media Type = LTO }
Pool { Name = Full; Pool Type = Backup }
Pool { Name = Inc; Pool Type = Backup }
FileSet { Name = fs; Include { File = /etc } }
JobDefs {
  Name = base
  Type = Backup
  Level = Incremental
  Client = fd1
  FileSet = fs
  Pool = Inc
  Storage = File
}
"""


def _write(tmp_path: Path, extra: str, base: str = BASE) -> Path:
    path = tmp_path / "strongroom-dir.conf"
    path.write_text(base + extra)
    return path


def _load(tmp_path: Path, extra: str, base: str = BASE) -> Any:
    return load_director_config(_write(tmp_path, extra, base)).config


def _error(tmp_path: Path, extra: str, base: str = BASE) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, extra, base)
    return info.value


def _line_of(extra: str, needle: str, base: str = BASE) -> int:
    text = base + extra
    return text[: text.index(needle, len(base))].count("\n") + 1


WEEKLY = """\
Schedule {
  Name = WeeklyCycle
  Run = Level=Full Pool=Full Storage=Tape Priority=5 1st sat at 21:00
  Run = Differential 2nd-5th sat at 21:00
  Run = Incremental mon-fri at 21:00
}
Job { Name = nightly; JobDefs = base; Schedule = WeeklyCycle }
"""


def test_run_lines_become_triggers_with_overrides(tmp_path: Path) -> None:
    config = _load(tmp_path, WEEKLY)
    triggers = job_triggers(config, config.jobs["nightly"])
    assert [(t.schedule, t.level, t.pool, t.storage, t.priority) for t in triggers] == [
        ("WeeklyCycle", "Full", "Full", "Tape", 5),
        ("WeeklyCycle", "Differential", None, None, None),
        ("WeeklyCycle", "Incremental", None, None, None),
    ]
    berlin = ZoneInfo("Europe/Berlin")
    friday_night = dt.datetime(2026, 4, 3, 22, 0, tzinfo=dt.UTC)
    when = min(w for t in triggers if (w := t.next_after(friday_night, berlin)) is not None)
    assert when == dt.datetime(2026, 4, 4, 19, 0, tzinfo=dt.UTC)  # Saturday 21:00 in Berlin (CEST)


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("fortnightly at 10:00", "unknown word"),
        ("daily at 25:00", "bad hour"),
        ("Colour=Blue daily", "unknown Run override"),
        ("Priority=high daily at 10:00", "whole number"),
    ],
)
def test_a_bad_run_line_names_its_own_file_and_line(tmp_path: Path, line: str, needle: str) -> None:
    extra = f"Schedule {{\n  Name = S\n  Run = daily at 01:00\n  Run = {line}\n}}\n"
    err = _error(tmp_path, extra)
    assert needle in err.message
    assert err.directive == "Run"
    assert err.file == tmp_path / "strongroom-dir.conf"
    assert err.line == _line_of(extra, line)
    assert f"{err.file}:{err.line}: Run:" in str(err)


def test_a_run_override_must_name_an_existing_pool_or_storage(tmp_path: Path) -> None:
    extra = "Schedule {\n  Name = S\n  Run = Pool=Nowhere daily at 01:00\n}\n"
    err = _error(tmp_path, extra)
    assert "Pool 'Nowhere'" in err.message and err.line == _line_of(extra, "Schedule")
    err = _error(tmp_path, "Schedule {\n  Name = S\n  Run = Storage=Nowhere daily\n}\n")
    assert "Storage 'Nowhere'" in err.message


def test_level_pools_in_a_run_line(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        "Schedule {\n  Name = S\n  Run = Full FullPool=Full IncrementalPool=Inc sun at 1:00\n"
        "  Run = IncrementalPool=Inc FullPool=Full mon-sat at 1:00\n}\n"
        "Job { Name = j; JobDefs = base; Schedule = S }\n",
    )
    full, inc = job_triggers(config, config.jobs["j"])
    assert (full.level, full.pool) == ("Full", "Full")
    assert (inc.level, inc.pool) == (None, "Inc")  # the Job's own level is Incremental


def test_disabled_jobs_and_schedules_have_no_triggers(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        WEEKLY.replace("Name = WeeklyCycle\n", "Name = WeeklyCycle\n  Enabled = no\n")
        + "Job { Name = off; JobDefs = base; Schedule Interval = 1 hour; Enabled = no }\n",
    )
    assert job_triggers(config, config.jobs["nightly"]) == []
    assert job_triggers(config, config.jobs["off"]) == []


def test_freezer_directives(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        """\
Job { Name = once; JobDefs = base; Schedule Date = "2026-12-24T18:00" }
Job { Name = every; JobDefs = base; Schedule Interval = "6 hours"; Schedule Start Date = "2026-03-25T00:00" }
Job { Name = cron; JobDefs = base; Schedule Cron = "minute=0 hour=*/6 day_of_week=mon-fri" }
Job { Name = fields; JobDefs = base; Schedule Day Of Week = "mon-fri"; Schedule Hour = 3; Schedule Minute = 15 }
Job { Name = always; JobDefs = base; Schedule Interval = continuous }
""",
    )
    tz = dt.UTC
    (once,) = job_triggers(config, config.jobs["once"])
    assert once.schedule == FREEZER
    assert once.next_after(dt.datetime(2026, 1, 1, tzinfo=tz), tz) == dt.datetime(
        2026, 12, 24, 17, 0, tzinfo=dt.UTC
    )
    (every,) = job_triggers(config, config.jobs["every"])
    assert every.next_after(dt.datetime(2026, 3, 25, 10, 0, tzinfo=dt.UTC), tz) == dt.datetime(
        2026, 3, 25, 11, 0, tzinfo=dt.UTC
    )  # start 00:00 CET = 23:00 UTC, + 2 × 6 h
    (fields,) = job_triggers(config, config.jobs["fields"])
    assert fields.text == "cron day_of_week=mon-fri hour=3 minute=15"
    assert fields.next_after(dt.datetime(2026, 3, 28, tzinfo=dt.UTC), tz) == dt.datetime(
        2026, 3, 30, 3, 15, tzinfo=dt.UTC
    )  # Monday (the trigger's zone is the one passed in)
    (always,) = job_triggers(config, config.jobs["always"])
    assert always.continuous
    (cron,) = job_triggers(config, config.jobs["cron"])
    assert not cron.continuous


def test_freezer_directives_inherit_from_jobdefs(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        "JobDefs { Name = hourly; JobDefs = base; Schedule Interval = 1 hour }\n"
        "Job { Name = j; JobDefs = hourly }\n",
    )
    (trigger,) = job_triggers(config, config.jobs["j"])
    assert trigger.text == "interval 1 hour"


@pytest.mark.parametrize(
    ("directives", "needle", "directive"),
    [
        ('Schedule Date = "next tuesday"', "ISO 8601", "Schedule Date"),
        ('Schedule Interval = "3 fortnights"', "bad interval", "Schedule Interval"),
        ('Schedule Cron = "minute=61"', "0..59", "Schedule Cron"),
        ('Schedule Cron = "colour=red"', "bad cron field", "Schedule Cron"),
        ("Schedule Hour = 25", "0..23", "Schedule Hour"),
        ('Schedule Day Of Week = "funday"', "bad value", "Schedule Day Of Week"),
        (
            'Schedule Cron = "hour=1"; Schedule Minute = 5',
            "both Schedule Cron and Schedule Minute",
            "Schedule Cron",
        ),
        (
            'Schedule Date = "2026-12-24"; Schedule Interval = "1 day"',
            "at most one of",
            "Schedule Interval",
        ),
        ('Schedule Interval = "1 day"; Schedule Hour = 3', "at most one of", "Schedule Hour"),
        (
            'Schedule Interval = "1 day"; Schedule Start Date = "soon"',
            "ISO 8601",
            "Schedule Start Date",
        ),
        (
            'Schedule Interval = "1 day"; Schedule End Date = "2026-01-01"; Schedule Start Date = "2026-02-01"',
            "not after",
            "Schedule End Date",
        ),
        (
            'Schedule Start Date = "2026-01-01"',
            "need Schedule Interval or Schedule Cron",
            "Schedule Start Date",
        ),
        (
            'Schedule Date = "2026-12-24"; Schedule End Date = "2027-01-01"',
            "one-shot",
            "Schedule Date",
        ),
    ],
)
def test_bad_freezer_directives_name_the_job_and_directive(
    tmp_path: Path, directives: str, needle: str, directive: str
) -> None:
    extra = f"Job {{\n  Name = j\n  JobDefs = base\n  {directives}\n}}\n"
    err = _error(tmp_path, extra)
    assert needle in err.message, err
    assert "'j'" in err.message
    assert err.directive == directive
    assert err.line == _line_of(extra, "Job {")


def test_time_zone(tmp_path: Path) -> None:
    base = BASE.replace("Europe/Berlin", "Mars/Olympus_Mons")
    err = _error(tmp_path, "", base)
    assert "unknown Time Zone 'Mars/Olympus_Mons'" in err.message
    assert err.directive == "Time Zone" and err.line == 1
    config = _load(tmp_path, "", BASE.replace("Europe/Berlin", "UTC"))
    assert config.director.time_zone == "UTC"


def test_naive_freezer_dates_are_in_the_directors_zone(tmp_path: Path) -> None:
    config = _load(
        tmp_path, 'Job { Name = once; JobDefs = base; Schedule Date = "2026-07-01T12:00" }\n'
    )
    (once,) = job_triggers(config, config.jobs["once"])
    assert once.next_after(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.UTC) == dt.datetime(
        2026, 7, 1, 10, 0, tzinfo=dt.UTC
    )  # CEST
