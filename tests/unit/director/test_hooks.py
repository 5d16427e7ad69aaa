"""Run On Status Change hooks: substitutions and environment, order per job, the concurrency and
queue bounds, timeouts, and failures that are logged on the job and never raised."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from director.jobs import hooks
from director.jobs.admission import WaitReason
from director.jobs.control import JobControl
from director.jobs.hooks import HookCall, HookRunner, on_status_change


class FakeDirector:
    """What the hooks use of the Director: its name, the daemon log and the job log."""

    def __init__(self) -> None:
        self.name = "test-dir"
        self.joblines: list[tuple[int, str, str]] = []
        self.warnings: list[tuple[str, dict[str, Any]]] = []
        self.exceptions: list[tuple[str, dict[str, Any]]] = []
        self.log = SimpleNamespace(
            warning=lambda event, **kw: self.warnings.append((event, kw)),
            exception=lambda event, **kw: self.exceptions.append((event, kw)),
        )
        self.status_hooks: HookRunner | None = None

    def joblog(self, jcr: JobControl, level: str, text: str) -> None:
        self.joblines.append((jcr.job_id, level, text))


def _job(job_id: int = 7, *commands: str, name: str = "nightly") -> JobControl:
    return JobControl(
        job_id=job_id,
        unique=f"{name}.2026-01-02_03.04.05_{job_id:02d}",
        name=name,
        job_type="B",
        level="F",
        resource=SimpleNamespace(run_on_status_change=commands),
        client="web-fd",
        fileset="Full Set",
        pool="Full",
        storage="File",
        priority=10,
        allow_mixed=False,
        sched_time=time.time(),
    )


async def _settle(director: FakeDirector) -> None:
    await hooks.hook_runner(director).join()


async def test_substitutions_are_expanded_per_change(tmp_path: Path) -> None:
    out = tmp_path / "out"
    director = FakeDirector()
    jcr = _job(7, f"echo '%i|%j|%n|%t|%l|%o|%s|%c|%d|%%|%x' >> {out}")
    on_status_change(director, jcr, "C", "R")
    on_status_change(director, jcr, "R", "T")
    await _settle(director)
    assert out.read_text().splitlines() == [
        f"7|{jcr.unique}|nightly|B|F|C|R|web-fd|test-dir|%|%x",
        f"7|{jcr.unique}|nightly|B|F|R|T|web-fd|test-dir|%|%x",
    ]
    assert director.joblines == []


async def test_environment_carries_the_job_the_statuses_and_the_event(tmp_path: Path) -> None:
    out = tmp_path / "env"
    director = FakeDirector()
    jcr = _job(
        9,
        f'echo "$STRONGROOM_JOBID $STRONGROOM_JOB $STRONGROOM_OLD_STATUS $STRONGROOM_STATUS" > {out}; '
        f'echo "$STRONGROOM_EVENT" > {out}.json',
    )
    jcr.wait = WaitReason("c", "client_limit", "web-fd")
    on_status_change(director, jcr, "C", "c")
    await _settle(director)
    assert out.read_text().split() == ["9", jcr.unique, "C", "c"]
    event = json.loads((tmp_path / "env.json").read_text())
    assert event == {
        "event": "job_status",
        "jobid": 9,
        "job": jcr.unique,
        "name": "nightly",
        "type": "B",
        "level": "F",
        "old": "C",
        "status": "c",
        "wait_reason": {"status": "c", "code": "client_limit", "resource": "web-fd"},
    }


async def test_a_published_event_is_passed_through(tmp_path: Path) -> None:
    out = tmp_path / "event.json"
    director = FakeDirector()
    jcr = _job(3, f'echo "$STRONGROOM_EVENT" > {out}')
    on_status_change(
        director, jcr, "R", "T", event={"seq": 42, "event": "job_status", "status": "T"}
    )
    await _settle(director)
    assert json.loads(out.read_text()) == {"seq": 42, "event": "job_status", "status": "T"}


async def test_changes_of_one_job_run_in_order_even_when_the_first_hook_is_slow(
    tmp_path: Path,
) -> None:
    out = tmp_path / "order"
    director = FakeDirector()
    # the first change's hook is the slow one; slots are free, yet the second must wait for it
    jcr = _job(1, f"if [ %s = R ]; then sleep 0.3; fi; echo %o%s >> {out}")
    for old, new in [("C", "R"), ("R", "T")]:
        on_status_change(director, jcr, old, new)
    other = _job(2, f"echo other >> {out}")
    on_status_change(director, other, "C", "R")  # another job is not held up behind job 1
    await _settle(director)
    assert out.read_text().splitlines() == ["other", "CR", "RT"]


async def test_several_commands_run_in_configured_order(tmp_path: Path) -> None:
    out = tmp_path / "many"
    director = FakeDirector()
    jcr = _job(1, f"sleep 0.1; echo first >> {out}", f"echo second >> {out}")
    on_status_change(director, jcr, "C", "R")
    await _settle(director)
    assert out.read_text().splitlines() == ["first", "second"]


async def test_a_failing_hook_is_a_job_warning_with_command_and_exit_status() -> None:
    director = FakeDirector()
    jcr = _job(5, "echo oops >&2; exit 3")
    on_status_change(director, jcr, "R", "E")  # returns at once, raises nothing
    await _settle(director)
    ((job_id, level, text),) = director.joblines
    assert (job_id, level) == (5, "warning")
    assert '"echo oops >&2; exit 3"' in text
    assert "exit status 3" in text
    assert "oops" in text
    assert "R -> E" in text


async def test_a_hook_past_its_time_limit_is_killed_and_reported() -> None:
    director = FakeDirector()
    director.status_hooks = HookRunner(director, timeout=0.3)
    jcr = _job(6, "sleep 30 & sleep 30")  # a child holding the output pipe is killed too
    started = time.monotonic()
    on_status_change(director, jcr, "C", "R")
    await _settle(director)
    assert time.monotonic() - started < 10
    ((_, level, text),) = director.joblines
    assert level == "warning"
    assert "timed out after 0.3 s" in text
    assert '"sleep 30 & sleep 30"' in text


async def test_a_command_that_cannot_start_is_reported() -> None:
    director = FakeDirector()

    async def broken(command: str, timeout: float, env: Mapping[str, str]) -> tuple[int, str]:
        raise OSError("no shell")

    director.status_hooks = HookRunner(director, run=broken)
    on_status_change(director, _job(4, "true"), "C", "R")
    await _settle(director)
    assert "cannot run: no shell" in director.joblines[0][2]


async def test_nothing_runs_without_commands_or_without_a_change() -> None:
    director = FakeDirector()
    calls: list[str] = []

    async def record(command: str, timeout: float, env: Mapping[str, str]) -> tuple[int, str]:
        calls.append(command)
        return 0, ""

    director.status_hooks = HookRunner(director, run=record)
    on_status_change(director, _job(1), "C", "R")
    on_status_change(director, _job(2, "true"), "c", "c")  # a new wait reason, same letter
    await _settle(director)
    assert calls == []


async def test_errors_inside_on_status_change_are_logged_never_raised() -> None:
    director = FakeDirector()
    jcr = _job(1)
    jcr.resource = SimpleNamespace(run_on_status_change=42)  # not a tuple of commands
    on_status_change(director, jcr, "C", "R")
    assert [e for e, _ in director.exceptions] == ["status_hook_failed"]


async def test_at_most_max_running_at_once_and_the_queue_is_bounded() -> None:
    director = FakeDirector()
    gate = asyncio.Event()
    running: list[str] = []
    peak = 0

    async def held(command: str, timeout: float, env: Mapping[str, str]) -> tuple[int, str]:
        nonlocal peak
        running.append(command)
        peak = max(peak, len(running))
        await gate.wait()
        running.remove(command)
        return 0, ""

    runner = HookRunner(director, max_running=2, max_queued=3, run=held)
    jobs = [_job(n) for n in range(6)]
    accepted = [runner.submit(HookCall(j, f"hook {j.job_id}", {}, "C", "R")) for j in jobs]
    assert accepted == [True, True, True, False, False, False]
    assert runner.dropped == 3
    assert [e for e, _ in director.warnings] == ["status_hook_dropped"] * 3
    for _ in range(5):
        await asyncio.sleep(0)
    assert running == ["hook 0", "hook 1"]
    assert (runner.running, runner.queued) == (2, 1)
    # two slots are busy, so the queue has room for two more again
    assert runner.submit(HookCall(jobs[3], "hook 3", {}, "C", "R"))
    assert runner.submit(HookCall(jobs[4], "hook 4", {}, "C", "R"))
    assert not runner.submit(HookCall(jobs[5], "hook 5", {}, "C", "R"))
    gate.set()
    await runner.join()
    assert peak == 2
    assert (runner.running, runner.queued) == (0, 0)


async def test_aclose_cancels_queued_and_running_hooks() -> None:
    director = FakeDirector()
    started = asyncio.Event()

    async def forever(command: str, timeout: float, env: Mapping[str, str]) -> tuple[int, str]:
        started.set()
        await asyncio.Event().wait()
        return 0, ""

    runner = HookRunner(director, max_running=1, run=forever)
    jcr = _job(1)
    for n in range(3):
        runner.submit(HookCall(jcr, f"hook {n}", {}, "C", "R"))
    await started.wait()
    await runner.aclose()
    assert (runner.running, runner.queued) == (0, 0)
    assert director.joblines == []


@pytest.mark.parametrize("status", ["T", "E", "A"])
async def test_final_statuses_reach_the_hook(tmp_path: Path, status: str) -> None:
    out = tmp_path / "final"
    director = FakeDirector()
    on_status_change(director, _job(1, f"echo %s > {out}"), "R", status)
    await _settle(director)
    assert out.read_text().strip() == status
