"""Peer faults through the real daemons: a File Daemon killed or stopped mid-job, a Director killed
mid-backup. The job ends in error on every side, devices are released, and the volume takes the next
backup; a good backup made before still restores exactly.

Every daemon here runs with `Heartbeat Interval = 2 seconds`, so that a stopped peer is found dead
within 2 x 2 + HEARTBEAT_GRACE seconds instead of about two minutes.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from common.link import HEARTBEAT_GRACE
from console import launcher
from console.admin import processes, write_installation
from tests.support.trees import compare_trees, make_hostile_tree
from tests.system.conftest import Installation, make_test_layout
from tests.system.test_backup_restore import messages, run, stripped

MIB = 1024 * 1024
HEARTBEAT = 2.0
DEAD_AFTER = 2 * HEARTBEAT + HEARTBEAT_GRACE  # common.link.Liveness
SLACK = 15.0  # the Director's reaction, the job's end, a loaded CI machine
POLL = 0.002  # volume and restore files are watched this often to act mid-stream


@dataclass
class Site:
    inst: Installation
    big: Path
    good: Path

    @property
    def root(self) -> Path:
        return self.inst.root

    def process(self, prog: str) -> launcher.DaemonProcess:
        return next(p for p in processes(self.root) if p.prog == prog)

    def pid(self, prog: str) -> int:
        pid = launcher.running_pid(self.process(prog).pid_file)
        assert pid is not None, f"{prog} is not running"
        return pid

    def restart(self, prog: str) -> None:
        process = self.process(prog)
        process.pid_file.unlink(missing_ok=True)
        self.inst.pids[prog] = launcher.start(process)


def _set_heartbeat(root: Path, seconds: float) -> None:
    own = [
        root / "etc" / "strongroom-dir.d" / "director",
        root / "etc" / "strongroom-sd.d" / "storage",
        root / "etc" / "strongroom-fd.d" / "client",
    ]
    for folder in own:
        for conf in folder.glob("*.conf"):
            text, n = re.subn(
                r"Heartbeat Interval = .*",
                f"Heartbeat Interval = {seconds:g} seconds",
                conf.read_text(),
            )
            assert n == 1, conf
            conf.write_text(text)


def _jobs(root: Path, big: Path, good: Path) -> None:
    etc = root / "etc" / "strongroom-dir.d"
    for name, path in (("BigSet", big), ("GoodSet", good)):
        (etc / "fileset" / f"{name}.conf").write_text(
            f"FileSet {{\n  Name = {name}\n  Include {{\n    Options {{\n      Signature = SHA256\n"
            f'      Sparse = yes\n    }}\n    File = "{path}"\n  }}\n}}\n'
        )
    for job, fileset in (("big", "BigSet"), ("good", "GoodSet")):
        (etc / "job" / f"{job}.conf").write_text(
            f"Job {{\n  Name = {job}\n  JobDefs = DefaultJob\n  FileSet = {fileset}\n  Level = Full\n}}\n"
        )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("faults")
    layout = make_test_layout(root)
    write_installation(layout)
    _set_heartbeat(root, HEARTBEAT)
    big, good = root / "big-src", root / "good-src"
    big.mkdir()
    for n in range(24):
        (big / f"random-{n:02d}").write_bytes(os.urandom(8 * MIB))
    make_hostile_tree(good, sparse_size=16 * MIB)
    _jobs(root, big, good)
    pids: dict[str, int] = {}
    try:
        for process in processes(root):
            pids[process.prog] = launcher.start(process)
        yield Site(Installation(layout, pids), big, good)
    finally:
        for process in reversed(processes(root)):
            launcher.stop(process.pid_file)


# -- helpers -----------------------------------------------------------------------------------


def _bytes_under(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                continue
    return total


def _start_and_freeze(site: Site, line: str, written: Callable[[], int]) -> int:
    """Start a job and SIGSTOP the File Daemon as soon as `written()` grew by 8 MiB: data is moving."""
    before = written()
    (started,) = run(site.inst, line)
    key = "run" if "run" in started else "restore"
    assert key in started, started
    deadline = time.monotonic() + 60
    while written() < before + 8 * MIB:
        if time.monotonic() > deadline:
            raise AssertionError(f"the job never started moving data: {started}")
        time.sleep(POLL)
    os.kill(site.pid("strongroom-fd"), signal.SIGSTOP)
    return int(started[key]["jobid"])


def _volumes(site: Site) -> int:
    return _bytes_under(site.inst.layout.storage_dir)


def _row(site: Site, jobid: int) -> dict[str, Any]:
    (listed,) = run(site.inst, f"list jobid={jobid}")
    return dict(listed["jobs"][0])


def _wait_until(what: str, check: Callable[[], Any], seconds: float) -> Any:
    """Poll `check` until it returns something true, for at most `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds:g} s (last: {value!r})")
        time.sleep(0.1)


def _no_reservations(site: Site) -> None:
    """The Storage Daemon holds no job (and so no device) any more: it may take a moment to see it."""

    def released() -> bool:
        (status,) = run(site.inst, "status storage=File")
        return bool(status["storage"]["running_jobs"] == [])

    _wait_until("the Storage Daemon released the job's device", released, DEAD_AFTER + SLACK)


def _client_idle(site: Site) -> None:
    def idle() -> bool:
        (status,) = run(site.inst, f"status client={site.inst.layout.client}")
        client = status.get("client")
        return isinstance(client, dict) and client["running_jobs"] == []

    _wait_until("the File Daemon dropped the job", idle, DEAD_AFTER + SLACK)


def _full_volumes(site: Site) -> list[str]:
    (vols,) = run(site.inst, "list volumes pool=Full")
    return sorted(v["volumename"] for v in vols["volumes"] if v["pool"] == "Full")


@pytest.fixture(scope="module")
def big_backup(site: Site) -> int:
    (started,) = run(site.inst, "run job=big yes")
    jobid = int(started["run"]["jobid"])
    run(site.inst, f"wait jobid={jobid}")
    assert _row(site, jobid)["jobstatus"] == "T", messages(site.inst)
    return jobid


@pytest.fixture(scope="module")
def good_backup(site: Site) -> int:
    (started,) = run(site.inst, "run job=good yes")
    jobid = int(started["run"]["jobid"])
    run(site.inst, f"wait jobid={jobid}")
    assert _row(site, jobid)["jobstatus"] == "T", messages(site.inst)
    return jobid


# -- the faults --------------------------------------------------------------------------------


def test_fd_killed_mid_backup(site: Site) -> None:
    messages(site.inst)  # start from an empty message queue
    jobid = _start_and_freeze(site, "run job=big yes", lambda: _volumes(site))
    os.kill(site.pid("strongroom-fd"), signal.SIGKILL)
    try:
        run(site.inst, f"wait jobid={jobid}")
        assert _row(site, jobid)["jobstatus"] == "E"
        text = messages(site.inst)
        assert site.inst.layout.client in text, text  # the error names the File Daemon
        _no_reservations(site)
    finally:
        site.restart("strongroom-fd")


def test_fd_killed_mid_restore(site: Site, big_backup: int) -> None:
    messages(site.inst)
    where = site.root / "restores" / "killed"
    line = f'restore jobid={big_backup} where="{where}" all yes'
    jobid = _start_and_freeze(site, line, lambda: _bytes_under(where))
    os.kill(site.pid("strongroom-fd"), signal.SIGKILL)
    try:
        run(site.inst, f"wait jobid={jobid}")
        assert _row(site, jobid)["jobstatus"] == "E"
        text = messages(site.inst)
        assert site.inst.layout.client in text, text
        _no_reservations(site)
    finally:
        site.restart("strongroom-fd")


def test_fd_stopped_mid_backup_is_found_dead_by_its_missing_heartbeats(site: Site) -> None:
    messages(site.inst)
    jobid = _start_and_freeze(site, "run job=big yes", lambda: _volumes(site))
    stopped = time.monotonic()
    fd = site.pid("strongroom-fd")
    try:
        run(site.inst, f"wait jobid={jobid} timeout={DEAD_AFTER + SLACK:g}")
        took = time.monotonic() - stopped
        assert _row(site, jobid)["jobstatus"] == "E"
        text = messages(site.inst)
        assert "not even a heartbeat" in text and site.inst.layout.client in text, text
        assert took < DEAD_AFTER + SLACK
        _no_reservations(site)
    finally:
        os.kill(fd, signal.SIGCONT)
    # Continued, the File Daemon finds its Director gone and drops the job too.
    _client_idle(site)


def test_director_killed_mid_backup(site: Site, good_backup: int) -> None:
    volumes = _full_volumes(site)
    jobid = _start_and_freeze(site, "run job=big yes", lambda: _volumes(site))
    fd = site.pid("strongroom-fd")
    try:
        os.kill(site.pid("strongroom-dir"), signal.SIGKILL)
    finally:
        os.kill(fd, signal.SIGCONT)
    site.restart("strongroom-dir")
    # The restarted Director ends the job that was running (no Reschedule On Error here).
    _wait_until("the interrupted job ended", lambda: _row(site, jobid)["jobstatus"] == "E", SLACK)
    _client_idle(site)
    _no_reservations(site)

    (started,) = run(site.inst, "run job=good yes")
    again = int(started["run"]["jobid"])
    run(site.inst, f"wait jobid={again}")
    assert _row(site, again)["jobstatus"] == "T", messages(site.inst)
    assert _full_volumes(site) == volumes  # the same volume took the new backup

    where = site.root / "restores" / "good"
    (restore,) = run(site.inst, f'restore jobid={good_backup} where="{where}" all yes')
    rid = int(restore["restore"]["jobid"])
    run(site.inst, f"wait jobid={rid}")
    assert _row(site, rid)["jobstatus"] == "T", messages(site.inst)
    assert compare_trees(site.good, where / str(site.good).lstrip("/")) == stripped(site.good)


def test_daemon_files_are_not_for_other_users(site: Site, good_backup: int) -> None:
    """Daemons run with umask 027 (common.runtime): volumes and the catalog they create say so."""
    created = [*site.inst.layout.storage_dir.iterdir(), *(site.root / "working" / "dir").iterdir()]
    assert created
    loose = {
        str(path): oct(path.stat().st_mode & 0o777)
        for path in created
        if path.stat().st_mode & 0o027
    }
    assert loose == {}
