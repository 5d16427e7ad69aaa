"""The job engine through real daemons: limits and wait reasons under load, reload, restart with the
queue intact, SIGKILL recovery, cancel in every state, time limits, duplicates, retries, multi-action."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from console import launcher
from console.admin import processes
from tests.system.conftest import Installation
from tests.system.test_backup_restore import run, run_job

HOLD = 'Run Before Job = "sleep {s}"'
# How long a "hold" job runs: long enough that the first three are still running while the test
# submits and lists twenty more jobs through separate console processes (2 s was not, on a slow CI).
HOLD_SECONDS = 6


def admin(name: str, *lines: str) -> str:
    body = "".join(f"  {line}\n" for line in lines)
    return f"Job {{\n  Name = {name}\n  Type = Admin\n  Messages = Standard\n{body}}}\n"


@pytest.fixture(scope="module")
def engine(installation: Installation) -> Installation:
    etc = installation.layout.root / "etc" / "strongroom-dir.d"
    data = installation.root / "enginedata"
    (data / "small").mkdir(parents=True)
    for n in range(5):
        (data / "small" / f"f{n}").write_bytes(os.urandom(20_000))
    (data / "slow").mkdir()
    for n in range(150):
        (data / "slow" / f"chunk-{n:03d}").write_bytes(os.urandom(1_000_000))
    (etc / "fileset" / "Small.conf").write_text(
        f'FileSet {{\n  Name = Small\n  Include {{\n    File = "{data / "small"}"\n  }}\n}}\n'
    )
    (etc / "fileset" / "Slow.conf").write_text(
        f"FileSet {{\n  Name = Slow\n  Include {{\n    Options {{\n      Signature = SHA512\n      Compression = GZIP9\n"
        f'    }}\n    File = "{data / "slow"}"\n  }}\n}}\n'
    )
    jobs = [
        admin("hold", HOLD.format(s=HOLD_SECONDS), "Maximum Concurrent Jobs = 3"),
        admin("hold1", HOLD.format(s=30), "Maximum Concurrent Jobs = 1"),
        admin("quick", "Maximum Concurrent Jobs = 5"),
        admin("urgent", "Priority = 5"),
        admin(
            "failing",
            'Run Before Job = "false"',
            "Reschedule On Error = yes",
            "Reschedule Interval = 1 s",
            "Reschedule Times = 2",
            "Reschedule Backoff = 1.5",
        ),
        admin("limited", HOLD.format(s=30), "Max Run Time = 2 s"),
        admin("single", HOLD.format(s=30), "Allow Duplicate Jobs = no"),
        admin(
            "single-q",
            HOLD.format(s=30),
            "Allow Duplicate Jobs = no",
            "Cancel Running Duplicates = yes",
        ),
        admin(
            "multi",
            "Action Defaults {\n    Max Retries = 1\n    Max Retry Interval = 1 s\n  }",
            "Action {\n    Job = quick\n  }",
            "Action {\n    Job = failing\n    Mandatory = no\n  }",
            "Action {\n    Job = small-a\n    Level = Full\n  }",
        ),
        admin("multi-strict", "Action {\n    Job = failing\n  }", "Action {\n    Job = quick\n  }"),
        admin("multi-hold", "Action {\n    Job = hold1\n  }"),
    ]
    (etc / "job" / "engine.conf").write_text(
        "".join(jobs)
        + "".join(
            f"Job {{\n  Name = {name}\n  JobDefs = DefaultJob\n  FileSet = Small\n}}\n"
            for name in ("small-a", "small-b")
        )
        + "Job {\n  Name = nomedia\n  JobDefs = DefaultJob\n  FileSet = Small\n  Pool = Manual\n"
        "  Full Backup Pool = Manual\n}\n"
        + "Job {\n  Name = slow-bk\n  JobDefs = DefaultJob\n  FileSet = Slow\n  Reschedule On Error = yes\n"
        "  Reschedule Interval = 1 s\n  Reschedule Times = 1\n}\n"
    )
    (etc / "pool" / "Manual.conf").write_text("Pool {\n  Name = Manual\n  Pool Type = Backup\n}\n")
    (reply,) = run(installation, "reload")
    assert "reloaded" in str(reply), reply
    return installation


def submit(inst: Installation, *lines: str) -> list[int]:
    return [r["run"]["jobid"] for r in run(inst, *lines)]


def jobs_by_id(inst: Installation) -> dict[int, dict[str, Any]]:
    (listed,) = run(inst, "list jobs")
    return {int(j["jobid"]): j for j in listed["jobs"]}


def until(predicate: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def wait_all(inst: Installation, ids: list[int], timeout: float = 120) -> dict[int, dict[str, Any]]:
    for job_id in ids:
        run(inst, f"wait jobid={job_id} timeout={timeout}", timeout=timeout + 10)
    rows = jobs_by_id(inst)
    return {i: rows[i] for i in ids}


def test_twenty_jobs_honour_limits_with_wait_reasons_and_reload(engine: Installation) -> None:
    inst = engine
    ids = submit(
        inst,
        *(["run job=hold yes"] * 16),
        "run job=small-a level=Full yes",
        "run job=small-b level=Full yes",
        "run job=quick yes",
    )
    rows = jobs_by_id(inst)
    mine = [rows[i] for i in ids]
    hold = [r for r in mine if r["name"] == "hold"]
    assert sum(r["jobstatus"] == "R" for r in hold) <= 3
    waiting = [r for r in hold if r["jobstatus"] != "R"]
    assert waiting and all(r["wait_reason"] == "max_job_jobs job=hold" for r in waiting), mine
    (status,) = run(inst, f"status job={waiting[-1]['jobid']}")
    assert status["job"]["wait_reason"] == {
        "status": "j",
        "code": "max_job_jobs",
        "resource": "job=hold",
    }
    small = [rows[ids[16]], rows[ids[17]]]
    assert any(r["wait_reason"] == "max_client_jobs client=test-fd" for r in small) or any(
        r["jobstatus"] == "T" for r in small
    ), small
    # A more important job (priority 5) never starts beside less important ones without Allow Mixed
    # Priority, and jobs queued behind it wait for it (Bareos jobq).
    ids += submit(inst, "run job=urgent yes")
    rows = jobs_by_id(inst)
    assert rows[ids[-1]]["wait_reason"] == "priority priority=10", rows[ids[-1]]
    assert all(rows[r["jobid"]]["wait_reason"] == "priority priority=10" for r in waiting)
    # reload with a higher limit: waiting hold jobs start at once
    conf = inst.layout.root / "etc" / "strongroom-dir.d" / "job" / "engine.conf"
    conf.write_text(
        conf.read_text().replace(
            HOLD.format(s=HOLD_SECONDS) + "\n  Maximum Concurrent Jobs = 3",
            HOLD.format(s=HOLD_SECONDS) + "\n  Maximum Concurrent Jobs = 8",
        )
    )
    run(inst, "reload")
    until(
        lambda: (
            sum(r["jobstatus"] == "R" and r["name"] == "hold" for r in jobs_by_id(inst).values())
            > 3
        ),
        timeout=10,
        what="more than 3 hold jobs running after reload",
    )
    ended = wait_all(inst, ids)
    assert all(r["jobstatus"] == "T" for r in ended.values()), ended
    conf.write_text(
        conf.read_text().replace("Maximum Concurrent Jobs = 8", "Maximum Concurrent Jobs = 3")
    )
    run(inst, "reload")


def test_cancel_in_every_state(engine: Installation) -> None:
    inst = engine
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() + 3600))
    running, queued = submit(inst, "run job=hold1 yes", "run job=hold1 yes")
    (scheduled,) = submit(inst, f'run job=quick when="{when}" yes')
    until(lambda: jobs_by_id(inst)[running]["jobstatus"] == "R", what="hold1 running")
    assert jobs_by_id(inst)[queued]["wait_reason"] == "max_job_jobs job=hold1"
    # waiting for the File Daemon: a client whose address accepts TCP and never answers
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        etc = inst.layout.root / "etc" / "strongroom-dir.d"
        (etc / "client" / "silent.conf").write_text(
            f"Client {{\n  Name = silent-fd\n  Address = 127.0.0.1\n  FD Port = {silent.getsockname()[1]}\n"
            '  Password = "x"\n  Catalog = MyCatalog\n}\n'
        )
        (etc / "job" / "silent.conf").write_text(
            "Job {\n  Name = silent\n  JobDefs = DefaultJob\n  FileSet = Small\n  Client = silent-fd\n}\n"
        )
        run(inst, "reload")
        (stuck,) = submit(inst, "run job=silent level=Full yes")
        until(lambda: jobs_by_id(inst)[stuck]["jobstatus"] == "F", what="job waiting for the FD")
        started = time.monotonic()
        for job_id in (scheduled, queued, running, stuck):
            (reply,) = run(inst, f"cancel jobid={job_id}")
            assert "canceled" in str(reply), reply
        rows = wait_all(inst, [scheduled, queued, running, stuck], timeout=30)
        assert time.monotonic() - started < 15
    assert {i: r["jobstatus"] for i, r in rows.items()} == dict.fromkeys(
        [scheduled, queued, running, stuck], "A"
    )
    until(
        lambda: run(inst, "status storage")[0]["storage"]["running_jobs"] == [],
        timeout=10,
        what="no job left on the Storage Daemon",
    )
    (etc / "job" / "silent.conf").unlink()
    (etc / "client" / "silent.conf").unlink()
    run(inst, "reload")


def test_max_run_time_and_expiration(engine: Installation) -> None:
    inst = engine
    limited, blocker = submit(inst, "run job=limited yes", "run job=hold1 yes")
    soon = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() + 1))
    (expiring,) = submit(inst, f'run job=hold1 expires="{soon}" yes')
    rows = wait_all(inst, [limited, expiring], timeout=30)
    assert rows[limited]["jobstatus"] == "A" and "Max Run Time exceeded" in rows[limited]["comment"]
    assert rows[expiring]["jobstatus"] == "E" and "expired" in rows[expiring]["comment"]
    run(inst, f"cancel jobid={blocker}")
    wait_all(inst, [blocker])


def test_duplicate_control(engine: Installation) -> None:
    inst = engine
    first, second = submit(inst, "run job=single yes", "run job=single yes")
    rows = wait_all(inst, [second], timeout=30)
    assert rows[second]["jobstatus"] == "A" and "duplicate of JobId" in rows[second]["comment"]
    assert jobs_by_id(inst)[first]["jobstatus"] == "R"
    run(inst, f"cancel jobid={first}")
    old, new = submit(inst, "run job=single-q yes")[0], None
    until(lambda: jobs_by_id(inst)[old]["jobstatus"] == "R", what="single-q running")
    (new,) = submit(inst, "run job=single-q yes")
    rows = wait_all(inst, [old], timeout=30)
    assert rows[old]["jobstatus"] == "A" and "Cancel Running Duplicates" in rows[old]["comment"]
    until(lambda: jobs_by_id(inst)[new]["jobstatus"] == "R", what="the newer duplicate running")
    run(inst, f"cancel jobid={new}")
    wait_all(inst, [first, new])


def test_reschedule_on_error_with_backoff(engine: Installation) -> None:
    inst = engine
    (first,) = submit(inst, "run job=failing yes")

    def retries() -> list[dict[str, Any]]:
        rows = [
            r for r in jobs_by_id(inst).values() if r["name"] == "failing" and r["jobid"] >= first
        ]
        return rows if len(rows) == 3 and all(r["jobstatus"] == "E" for r in rows) else []

    rows = until(retries, timeout=30, what="two retries")
    assert [r["retry"] for r in rows] == [0, 1, 2]
    msgs = "\n".join(m["text"] for m in run(inst, "messages")[0]["messages"])
    assert "Rescheduled as JobId" in msgs and "Reschedule Times = 2 reached" in msgs


def test_multi_action_job_with_an_optional_action_failing(engine: Installation) -> None:
    inst = engine
    row = run_job(inst, "run job=multi yes")
    assert row["jobstatus"] == "W", row
    children = [r for r in jobs_by_id(inst).values() if r["parentjobid"] == row["jobid"]]
    by_name: dict[str, list[str]] = {}
    for child in children:
        by_name.setdefault(child["name"], []).append(child["jobstatus"])
    assert by_name == {"quick": ["T"], "failing": ["E", "E"], "small-a": ["T"]}, by_name
    msgs = "\n".join(m["text"] for m in run(inst, "messages")[0]["messages"])
    assert "Action 2/3 (job failing, optional)" in msgs and "optional, continuing" in msgs
    strict = run_job(inst, "run job=multi-strict yes")
    assert strict["jobstatus"] == "E" and "1 remaining action(s) skipped" in strict["comment"], (
        strict
    )


def test_canceling_a_multi_action_job_cancels_its_running_action(engine: Installation) -> None:
    inst = engine
    (parent,) = submit(inst, "run job=multi-hold yes")
    child = until(
        lambda: [
            r
            for r in jobs_by_id(inst).values()
            if r["parentjobid"] == parent and r["jobstatus"] == "R"
        ],
        timeout=20,
        what="the action running",
    )[0]
    run(inst, f"cancel jobid={parent}")
    rows = wait_all(inst, [parent, int(child["jobid"])], timeout=30)
    assert rows[parent]["jobstatus"] == "A" and rows[int(child["jobid"])]["jobstatus"] == "A", rows


def _restart_director(inst: Installation, kill: bool) -> None:
    director = next(p for p in processes(inst.root) if p.prog == "strongroom-dir")
    pid = launcher.running_pid(director.pid_file)
    assert pid is not None
    if kill:
        os.kill(pid, signal.SIGKILL)

        def gone() -> bool:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
            return not launcher.pid_alive(pid)

        until(gone, timeout=10, what="director gone")
        director.pid_file.unlink(missing_ok=True)
    else:
        assert launcher.stop(director.pid_file)
    launcher.start(director)


def test_restart_keeps_the_queue(engine: Installation) -> None:
    inst = engine
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() + 3600))
    running, queued1, queued2 = submit(
        inst, "run job=hold1 yes", "run job=quick priority=15 yes", "run job=quick priority=15 yes"
    )
    (scheduled,) = submit(inst, f'run job=quick when="{when}" yes')
    until(lambda: jobs_by_id(inst)[running]["jobstatus"] == "R", what="hold1 running")
    assert jobs_by_id(inst)[queued2]["wait_reason"] == "priority priority=10"
    _restart_director(inst, kill=False)
    rows = wait_all(inst, [queued1, queued2, running], timeout=60)
    assert rows[queued1]["jobstatus"] == "T" and rows[queued2]["jobstatus"] == "T"
    assert rows[running]["jobstatus"] == "E" and "Director stopped" in rows[running]["comment"], (
        rows[running]
    )
    (status,) = run(inst, f"status job={scheduled}")
    assert (
        status["job"]["jobstatus"] == "t" and status["job"]["wait_reason"]["code"] == "start_time"
    )
    run(inst, f"cancel jobid={scheduled}")


def test_sigkill_during_a_backup_is_recovered_and_rescheduled(engine: Installation) -> None:
    inst = engine
    (victim,) = submit(inst, "run job=slow-bk level=Full yes")
    until(
        lambda: (
            jobs_by_id(inst)[victim]["jobstatus"] == "R" and jobs_by_id(inst)[victim]["jobbytes"]
        ),
        timeout=60,
        what="slow backup moving data",
    )
    _restart_director(inst, kill=True)
    row = jobs_by_id(inst)[victim]
    assert row["jobstatus"] == "E" and "Director stopped" in row["comment"], row
    until(
        lambda: run(inst, "status storage")[0]["storage"]["running_jobs"] == [],
        timeout=20,
        what="the SD to drop the session",
    )
    until(
        lambda: run(inst, "status client")[0]["client"]["running_jobs"] == [],
        timeout=20,
        what="the FD to drop the session",
    )
    retry = until(
        lambda: [
            r for r in jobs_by_id(inst).values() if r["name"] == "slow-bk" and r["retry"] == 1
        ],
        timeout=20,
        what="the rescheduled backup",
    )[0]
    rows = wait_all(inst, [int(retry["jobid"])], timeout=300)
    assert rows[int(retry["jobid"])]["jobstatus"] == "T"


def test_a_job_waits_for_media_until_a_volume_is_labeled(engine: Installation) -> None:
    inst = engine
    (job_id,) = submit(inst, "run job=nomedia level=Full yes")
    until(lambda: jobs_by_id(inst)[job_id]["jobstatus"] == "m", what="the job waiting for media")
    (status,) = run(inst, f"status job={job_id}")
    assert status["job"]["wait_reason"] == {
        "status": "m",
        "code": "waiting_for_volume",
        "resource": "pool=Manual",
    }
    (labeled,) = run(inst, "label storage=File pool=Manual volume=Manual-0001")
    assert labeled["label"]["volume"] == "Manual-0001", labeled
    rows = wait_all(inst, [job_id], timeout=60)
    assert rows[job_id]["jobstatus"] == "T", rows
