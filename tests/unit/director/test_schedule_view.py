"""`status scheduler` and the next runs under `show schedule`, on a loaded configuration without daemons."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from director.config import load_director_config
from director.console import schedule_view
from director.console.registry import CommandError, Session, parse_command
from director.console.show_cmd import show
from director.console.status_cmd import status

CONF = """\
Director { Name = dir1; Password = "x"; Time Zone = Europe/Berlin }
Client { Name = fd1; Address = 127.0.0.1; Password = "fd" }
Storage { Name = File; Address = 127.0.0.1; Password = "sd"; Device = D; Media Type = File }
Storage { Name = Tape; Address = 127.0.0.1; Password = "sd"; Device = T; Media Type = LTO }
Pool { Name = Full; Pool Type = Backup }
Pool { Name = Inc; Pool Type = Backup }
FileSet { Name = fs; Include { File = /etc } }
Schedule {
  Name = Cycle
  Run = Level=Full Storage=Tape 1st sat at 21:00
  Run = Incremental mon-fri at 21:00
}
Schedule { Name = Off; Enabled = no; Run = hourly }
JobDefs { Name = base; Type = Backup; Level = Incremental; Client = fd1; FileSet = fs; Pool = Inc; Storage = File }
Job { Name = nightly; JobDefs = base; Schedule = Cycle; Full Backup Pool = Full }
Job { Name = hourly; JobDefs = base; Schedule Cron = "minute=15" }
Job { Name = secret; JobDefs = base; Schedule = Cycle }
"""


@pytest.fixture
def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Session:
    path = tmp_path / "dir.conf"
    path.write_text(CONF)
    config = load_director_config(path).config
    now = dt.datetime(2026, 4, 3, 12, 0, tzinfo=dt.UTC)  # Friday
    monkeypatch.setattr(schedule_view, "_now", lambda: now)
    director: Any = SimpleNamespace(config=config)
    return Session(console="admin", acl=lambda kind, name: name != "secret", director=director)


async def test_status_scheduler_lists_runs_by_time(session: Session) -> None:
    reply = await status(session, parse_command("status scheduler days=2 job=nightly"))
    runs = reply.data["scheduler"]["runs"]
    assert [(r["local"], r["level"], r["pool"], r["storage"], r["schedule"]) for r in runs] == [
        ("Fri 03-Apr-2026 21:00:00", "Incremental", "Inc", "File", "Cycle"),
        (
            "Sat 04-Apr-2026 21:00:00",
            "Full",
            "Full",
            "Tape",
            "Cycle",
        ),  # Full uses the Job's Full Backup Pool
    ]
    assert reply.text.startswith("Scheduler Jobs (next 2 days, Europe/Berlin):")
    assert "Sat 04-Apr-2026 21:00:00  Full          Backup   nightly" in reply.text


async def test_status_scheduler_defaults_and_acl(session: Session) -> None:
    reply = await status(session, parse_command("status scheduler"))
    data = reply.data["scheduler"]
    assert data["days"] == 7
    jobs = {r["job"] for r in data["runs"]}
    assert jobs == {"nightly", "hourly"}  # `secret` is not permitted for this console
    assert len([r for r in data["runs"] if r["job"] == "hourly"]) == 7 * 24
    times = [r["time"] for r in data["runs"]]
    assert times == sorted(times)


@pytest.mark.parametrize(
    "line",
    [
        "status scheduler days=0",
        "status scheduler days=x",
        "status scheduler job=nope",
        "status scheduler job=secret",
    ],
)
async def test_status_scheduler_bad_arguments(session: Session, line: str) -> None:
    with pytest.raises(CommandError):
        await status(session, parse_command(line))


async def test_show_schedule_prints_the_next_runs(session: Session) -> None:
    reply = await show(session, parse_command("show schedule=Cycle"))
    assert reply.text.count("# next:") == 5
    assert "# next: Fri 03-Apr-2026 21:00:00  (Incremental mon-fri at 21:00)" in reply.text
    (cycle,) = reply.data["schedules"]
    assert cycle["next_runs"][1]["overrides"] == {"level": "Full", "storage": "Tape"}
    reply = await show(session, parse_command("show schedules"))
    assert "# disabled: no runs" in reply.text
