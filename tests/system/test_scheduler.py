"""The scheduler through the real daemons: a Freezer interval Job runs by itself; a bad Run line fails `-t`."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.system.conftest import Installation
from tests.system.test_backup_restore import messages, run

JOB = "every-2s"
DEADLINE = 20.0


@pytest.fixture(scope="module")
def scheduled(installation: Installation) -> Installation:
    etc = installation.layout.root / "etc" / "strongroom-dir.d"
    data = installation.root / "scheduled-data"
    data.mkdir()
    (data / "hello.txt").write_text("scheduled backups\n")
    (etc / "fileset" / "Tiny.conf").write_text(
        f'FileSet {{\n  Name = Tiny\n  Include {{\n    File = "{data}"\n  }}\n}}\n'
    )
    (etc / "job" / f"{JOB}.conf").write_text(
        f"Job {{\n  Name = {JOB}\n  Type = Backup\n  Level = Incremental\n  Client = {installation.layout.client}\n"
        "  FileSet = Tiny\n  Storage = File\n  Pool = Incremental\n  Full Backup Pool = Full\n  Messages = Standard\n"
        '  Schedule Interval = "2 seconds"\n}\n'
    )  # no JobDefs: DefaultJob would add its WeeklyCycle
    (reply,) = run(installation, "reload")
    assert "reloaded" in str(reply), reply
    return installation


def test_an_interval_job_runs_by_itself(scheduled: Installation) -> None:
    inst = scheduled
    deadline = time.monotonic() + DEADLINE
    done: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        (listed,) = run(inst, f"list jobs job={JOB}")
        done = [j for j in listed["jobs"] if j["name"] == JOB and j["jobstatus"] == "T"]
        if len(done) >= 2:
            break
        time.sleep(0.5)  # polling real daemons from outside; nothing else to wait on
    assert len(done) >= 2, messages(inst)
    assert inst.log("strongroom-dir").count("scheduled_run_submitted") >= 2

    (status,) = run(inst, f"status scheduler days=1 job={JOB}")
    runs = status["scheduler"]["runs"]
    assert runs, status
    assert {r["job"] for r in runs} == {JOB}
    assert {r["schedule"] for r in runs} == {"freezer"}
    assert runs[0]["level"] == "Incremental" and runs[0]["type"] == "Backup"
    assert status["scheduler"]["truncated"]  # every 2 s for a day is more than the listing shows


def test_status_scheduler_and_show_schedule(scheduled: Installation) -> None:
    inst = scheduled
    client_job = f"backup-{inst.layout.client}"
    (status,) = run(inst, f"status scheduler days=8 job={client_job}")
    weekly = [r for r in status["scheduler"]["runs"] if r["schedule"] == "WeeklyCycle"]
    assert weekly and {r["job"] for r in weekly} == {client_job}
    assert {r["level"] for r in weekly} >= {"Incremental"}
    result = inst.console(f"status scheduler days=8 job={client_job}", "show schedule=WeeklyCycle")
    assert "Scheduler Jobs" in result.stdout and "WeeklyCycle" in result.stdout
    assert result.stdout.count("# next:") == 5
    (shown,) = run(inst, "show schedule=WeeklyCycle")
    assert len(shown["schedules"][0]["next_runs"]) == 5


def test_a_bad_run_line_fails_the_configuration_check(tmp_path: Path) -> None:
    conf = tmp_path / "dir.conf"
    conf.write_text(
        'Director {\n  Name = d\n  Password = "x"\n}\n'
        "Schedule {\n  Name = S\n  Run = Full 1st sun at 23:05\n  Run = Full fortnightly at 23:05\n}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "director", "-t", "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 42
    assert f"{conf}:8: Run:" in result.stderr
    assert "fortnightly" in result.stderr
