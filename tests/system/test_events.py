"""Job events through the real daemons: `.events` streams a backup's status changes to one console
while another runs the job, and `Run On Status Change` hooks record the same transitions."""

from __future__ import annotations

import itertools
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.system.conftest import Installation
from tests.system.test_backup_restore import messages, run, run_job

JOB = "evented"
FINAL = frozenset("TWEfAI")


@pytest.fixture(scope="module")
def configured(installation: Installation) -> Installation:
    etc = installation.layout.root / "etc" / "strongroom-dir.d"
    data = installation.root / "events-data"
    data.mkdir()
    for n in range(5):
        (data / f"file-{n}.txt").write_text(f"content {n}\n" * 100)
    marks = installation.root / "events-marks"
    marks.mkdir()
    (etc / "fileset" / "EventsSet.conf").write_text(
        f'FileSet {{\n  Name = EventsSet\n  Include {{\n    File = "{data}"\n  }}\n}}\n'
    )
    (etc / "job" / f"{JOB}.conf").write_text(
        f"Job {{\n  Name = {JOB}\n  JobDefs = DefaultJob\n  FileSet = EventsSet\n"
        f'  Run On Status Change = "echo %i %o %s %n %t %l >> {marks}/transitions"\n'
        f'  Run On Status Change = "echo $STRONGROOM_JOBID $STRONGROOM_OLD_STATUS $STRONGROOM_STATUS >> {marks}/env"\n'
        "}\n"
    )
    (reply,) = run(installation, "reload")
    assert "reloaded" in json.dumps(reply), reply
    return installation


class EventsConsole:
    """`srconsole` running `.events` in the background; its output lines arrive on a queue."""

    def __init__(self, inst: Installation, line: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "console", "-c", str(inst.layout.console_config), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.close()
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self, timeout: float = 60) -> str | None:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output from `.events` within {timeout} s") from None

    def events(self, until: Any, timeout: float = 60) -> Iterator[dict[str, Any]]:
        """Parsed lines until `until(event)` is true (inclusive) or the output ends."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.next_line(max(0.1, deadline - time.monotonic()))
            if line is None:
                return
            event = json.loads(line)
            yield event
            if until(event):
                return

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def _job_statuses(events: list[dict[str, Any]], jobid: int) -> list[dict[str, Any]]:
    return [e for e in events if e.get("event") == "job_status" and e.get("jobid") == jobid]


def _assert_backup_sequence(changes: list[dict[str, Any]]) -> None:
    statuses = [e["status"] for e in changes]
    assert statuses[0] == "C", statuses
    assert statuses[-1] == "T", statuses
    assert "R" in statuses, statuses
    assert statuses.index("R") < len(statuses) - 1
    seqs = [e["seq"] for e in changes]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    for before, after in itertools.pairwise(changes):
        assert after["old"] == before["status"], changes  # nothing lost, nothing reordered
    for e in changes:
        assert (e["name"], e["type"], e["level"]) == (JOB, "B", "F")
        assert e["job"].startswith(f"{JOB}.")
        assert set(e) >= {
            "seq",
            "time",
            "event",
            "jobid",
            "job",
            "name",
            "type",
            "level",
            "old",
            "status",
            "wait_reason",
        }


def _wait_for_lines(path: Path, until: Any, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if until(lines):
            return lines
        time.sleep(0.1)
    raise AssertionError(f"{path}: {lines}")


def test_events_stream_a_backup_and_hooks_record_its_transitions(configured: Installation) -> None:
    inst = configured
    watcher = EventsConsole(inst, f".events job={JOB} timeout=120")
    try:
        subscribed = json.loads(watcher.next_line() or "null")
        assert subscribed["event"] == "subscribed", subscribed
        assert subscribed["filter"] == {"jobid": None, "job": JOB}

        row = run_job(inst, f"run job={JOB} level=Full yes")
        assert row["jobstatus"] == "T", messages(inst)
        jobid = row["jobid"]
        seen = list(watcher.events(lambda e: e.get("jobid") == jobid and e.get("status") in FINAL))
    finally:
        watcher.stop()  # a console that goes away mid-stream ends its subscription
    changes = _job_statuses(seen, jobid)
    _assert_backup_sequence(changes)
    assert all(e.get("jobid") == jobid for e in seen)  # job= filtered out every other job

    # the Director noticed the console leaving and dropped its subscription
    deadline = time.monotonic() + 10
    while (
        "console_stream_hung_up" not in inst.log("strongroom-dir") and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert "console_stream_hung_up" in inst.log("strongroom-dir")

    marks = inst.root / "events-marks"
    transitions = _wait_for_lines(
        marks / "transitions",
        lambda ls: any(line.split()[2] == "T" for line in ls if line.split()[0] == str(jobid)),
    )
    ours = [line.split() for line in transitions if line.split()[0] == str(jobid)]
    assert all(fields[3:] == [JOB, "B", "F"] for fields in ours), ours
    pairs = [(old, new) for _, old, new, *_ in ours]
    assert pairs[0][0] == "C" and pairs[-1][1] == "T", pairs
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pairs)), pairs  # in order, contiguous
    assert pairs == [(e["old"], e["status"]) for e in changes[1:] if e["old"] != e["status"]]
    env = _wait_for_lines(marks / "env", lambda ls: f"{jobid} {pairs[-1][0]} T" in ls)
    assert [line.split()[1:] for line in env if line.split()[0] == str(jobid)] == [
        list(p) for p in pairs
    ]


def test_events_count_ends_the_stream_and_json_mode_prints_one_object_per_event(
    configured: Installation,
) -> None:
    inst = configured
    watcher = EventsConsole(inst, f".events job={JOB} count=2 timeout=60", "--json")
    try:
        first = json.loads(watcher.next_line() or "null")
        assert first["jsonrpc"] == "2.0"
        assert first["result"]["event"] == "subscribed"
        (started,) = run(inst, f"run job={JOB} level=Full yes")
        jobid = started["run"]["jobid"]
        rest = [json.loads(line) for line in iter(watcher.next_line, None)]
        assert watcher.proc.wait(timeout=30) == 0
    finally:
        watcher.stop()
    *events, final = rest
    assert [e["result"]["jobid"] for e in events] == [jobid, jobid]
    assert events[0]["result"]["status"] == "C"
    assert events[1]["result"]["old"] == "C"
    assert final["result"] == {"events": {"sent": 2, "ended": "count"}}
    run(inst, f"wait jobid={jobid}")


def test_events_timeout_ends_a_quiet_stream(configured: Installation) -> None:
    result = configured.console(".events jobid=999999 timeout=0.5", args=("--json",))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["result"]["event"] == "subscribed"
    assert lines[-1]["result"] == {"events": {"sent": 0, "ended": "timeout"}}
    assert len(lines) == 2
