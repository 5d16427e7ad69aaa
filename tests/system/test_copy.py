"""Copy and migrate, local (one SD, two devices) and remote (two SDs), with restores compared exactly,
copy promotion, restore from a copy when the original's volumes are gone, and the failure cases."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.fixtures import free_port, sd2_config
from console import launcher
from console.admin import processes, write_installation
from tests.support.trees import compare_trees, make_hostile_tree
from tests.system.conftest import Installation, make_test_layout
from tests.system.test_backup_restore import messages, run, stripped

MIB = 1024 * 1024


@dataclass
class Site:
    inst: Installation
    sd2: launcher.DaemonProcess
    src: Path
    sd2_port: int

    @property
    def root(self) -> Path:
        return self.inst.root


def _director_config(root: Path, sd1_port: int, sd2_port: int, src: Path) -> None:
    etc = root / "etc" / "strongroom-dir.d"
    storage = (etc / "storage" / "File.conf").read_text()
    (etc / "storage" / "FileB.conf").write_text(
        storage.replace("Name = File", "Name = FileB").replace(
            "Device = FileStorage", "Device = FileStorageB"
        )
    )
    (etc / "storage" / "File2.conf").write_text(
        storage.replace("Name = File", "Name = File2")
        .replace("Device = FileStorage", "Device = FileStorage2")
        .replace(f"SD Port = {sd1_port}", f"SD Port = {sd2_port}")
    )
    (etc / "storage" / "Tape.conf").write_text(
        storage.replace("Name = File", "Name = Tape").replace(
            "Media Type = File", "Media Type = LTO"
        )
    )
    (etc / "storage" / "Nowhere.conf").write_text(
        storage.replace("Name = File", "Name = Nowhere").replace(
            f"SD Port = {sd1_port}", f"SD Port = {free_port()}"
        )
    )
    pools = {"CopyLocal": "FileB", "CopyRemote": "File2", "Tape": "Tape", "Nowhere": "Nowhere"}
    for name, storage_name in pools.items():
        (etc / "pool" / f"{name}.conf").write_text(
            f'Pool {{\n  Name = {name}\n  Pool Type = Backup\n  Storage = {storage_name}\n  Label Format = "{name}-"\n}}\n'
        )
    (etc / "pool" / "Source.conf").write_text(
        'Pool {\n  Name = Source\n  Pool Type = Backup\n  Label Format = "Source-"\n'
        "  Next Pool = CopyLocal\n  Migration Time = 1 second\n}\n"
    )
    (etc / "fileset" / "CopySet.conf").write_text(
        f"FileSet {{\n  Name = CopySet\n  Include {{\n    Options {{\n      Signature = SHA256\n      Sparse = yes\n    }}\n"
        f'    File = "{src}"\n  }}\n}}\n'
    )
    (etc / "job" / "src.conf").write_text(
        "Job {\n  Name = src\n  JobDefs = DefaultJob\n  FileSet = CopySet\n  Pool = Source\n  Full Backup Pool = Source\n"
        "  Accurate = yes\n}\n"
    )
    big = src.parent / "big-src"
    (etc / "fileset" / "BigSet.conf").write_text(
        f'FileSet {{\n  Name = BigSet\n  Include {{\n    File = "{big}"\n  }}\n}}\n'
    )
    (etc / "job" / "bigsrc.conf").write_text(
        "Job {\n  Name = bigsrc\n  JobDefs = DefaultJob\n  FileSet = BigSet\n  Pool = Source\n  Full Backup Pool = Source\n}\n"
    )
    jobs = {
        "copy-big": ("Copy", "CopyRemote", "Job", "^bigsrc$"),
        "copy-local": ("Copy", "CopyLocal", "Job", "^src$"),
        "copy-remote": ("Copy", "CopyRemote", "Job", "^src$"),
        "migrate-local": ("Migrate", "CopyLocal", "Job", "^src$"),
        "migrate-remote": ("Migrate", "CopyRemote", "Job", "^src$"),
        "copy-none": ("Copy", "CopyLocal", "Job", "^no-such-job$"),
        "copy-uncopied": ("Copy", "CopyRemote", "PoolUncopiedJobs", ""),
        "copy-client": ("Copy", "CopyLocal", "Client", "^test-fd$"),
        "copy-volume": ("Copy", "CopyLocal", "Volume", "^Source-"),
        "copy-sql": (
            "Copy",
            "CopyLocal",
            "SQLQuery",
            "SELECT JobId FROM Job WHERE Name = 'src' AND Type = 'B'",
        ),
        "copy-pooltime": ("Copy", "CopyLocal", "PoolTime", ""),
        "copy-oldest": ("Copy", "CopyLocal", "OldestVolume", ""),
        "copy-tape": ("Copy", "Tape", "Job", "^src$"),
        "copy-nowhere": ("Copy", "Nowhere", "Job", "^src$"),
    }
    for name, (kind, next_pool, selection, pattern) in jobs.items():
        pattern_line = f'  Selection Pattern = "{pattern}"\n' if pattern else ""
        (etc / "job" / f"{name}.conf").write_text(
            f"Job {{\n  Name = {name}\n  Type = {kind}\n  Pool = Source\n  Next Pool = {next_pool}\n"
            f"  Selection Type = {selection}\n{pattern_line}  Messages = Standard\n  Client = test-fd\n"
            "  FileSet = CopySet\n  Storage = File\n}\n"
        )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("copy")
    layout = make_test_layout(root)
    write_installation(layout)
    src = root / "copy-src"
    make_hostile_tree(src, sparse_size=64 * MIB)
    (root / "big-src").mkdir()
    for n in range(40):
        (root / "big-src" / f"random-{n:02d}").write_bytes(os.urandom(10 * MIB))
    sd2_port = free_port()
    sd2_etc = sd2_config(root, sd2_port)
    _director_config(root, layout.sd_port, sd2_port, src)
    sd2 = launcher.DaemonProcess(
        prog="strongroom-sd2",
        module="storaged",
        config=sd2_etc,
        log_file=root / "log" / "strongroom-sd2.log",
        pid_file=root / "run" / "strongroom-sd2.pid",
    )
    procs = processes(root)
    pids: dict[str, int] = {}
    try:
        pids[sd2.prog] = launcher.start(sd2)
        for process in procs:
            pids[process.prog] = launcher.start(process)
        yield Site(Installation(layout, pids), sd2, src, sd2_port)
    finally:
        for process in reversed(procs):
            launcher.stop(process.pid_file)
        launcher.stop(sd2.pid_file)


def job(site: Site, line: str) -> dict[str, Any]:
    (started,) = run(site.inst, line)
    assert "run" in started or "restore" in started, started
    jobid = (started.get("run") or started["restore"])["jobid"]
    run(site.inst, f"wait jobid={jobid}")
    (listed,) = run(site.inst, f"list jobid={jobid}")
    return dict(listed["jobs"][0])


def jobs(site: Site) -> list[dict[str, Any]]:
    (listed,) = run(site.inst, "list jobs")
    return list(listed["jobs"])


def restore_and_compare(site: Site, selection: str, tag: str) -> str:
    where = site.root / "restores" / tag
    (started,) = run(site.inst, f'restore {selection} where="{where}" all yes')
    assert "restore" in started, started
    jobid = started["restore"]["jobid"]
    run(site.inst, f"wait jobid={jobid}")
    (listed,) = run(site.inst, f"list jobid={jobid}")
    assert listed["jobs"][0]["jobstatus"] == "T", messages(site.inst)
    assert compare_trees(site.src, where / str(site.src).lstrip("/")) == stripped(site.src)
    return json.dumps(started)


def no_reservations(site: Site) -> None:
    for target in ("status storage=File", "status storage=File2"):
        (status,) = run(site.inst, target)
        assert status["storage"]["running_jobs"] == [], status


@pytest.fixture(scope="module")
def backed_up(site: Site) -> int:
    row = job(site, "run job=src level=Full yes")
    assert row["jobstatus"] == "T", messages(site.inst)
    return int(row["jobid"])


def _new_rows(site: Site, before: set[int]) -> list[dict[str, Any]]:
    return [j for j in jobs(site) if j["jobid"] not in before]


@pytest.mark.parametrize(("job_name", "remote"), [("copy-local", False), ("copy-remote", True)])
def test_copy_then_restore_from_the_copy(
    site: Site, backed_up: int, job_name: str, remote: bool
) -> None:
    before = {j["jobid"] for j in jobs(site)}
    control = job(site, f"run job={job_name} yes")
    assert control["jobstatus"] == "T", messages(site.inst)
    assert control["type"] == "c"
    (copy,) = [j for j in _new_rows(site, before) if j["type"] == "C"]
    assert copy["priorjobid"] == backed_up and copy["jobstatus"] == "T"
    assert copy["jobfiles"] > 20
    # The worker is an ordinary job of the control job: its own log, start and end report.
    assert copy["parentjobid"] == control["jobid"]
    (log,) = run(site.inst, f"list joblog jobid={copy['jobid']}")
    texts = "\n".join(row["logtext"] for row in log["joblog"])
    assert f"Copying JobId {backed_up} to JobId {copy['jobid']}" in texts, texts
    assert "Termination:" in texts and "Start " in texts, texts
    storage_dir = site.root / ("storage2" if remote else "storage-b")
    assert any(storage_dir.iterdir())
    restore_and_compare(site, f"jobid={copy['jobid']}", job_name)
    no_reservations(site)


def test_run_without_yes_shows_the_resolution(site: Site) -> None:
    (shown,) = run(site.inst, "run job=copy-remote nextpool=CopyLocal")
    resolved = shown["run"]["resolved"]
    assert (resolved["pool"], resolved["next_pool"], resolved["next_storage"]) == (
        "Source",
        "CopyLocal",
        "FileB",
    )
    (default,) = run(site.inst, "run job=copy-remote")
    assert default["run"]["resolved"]["next_pool"] == "CopyRemote"


@pytest.mark.parametrize(
    "job_name", ["copy-client", "copy-volume", "copy-sql", "copy-pooltime", "copy-oldest"]
)
def test_selection_types_find_the_backup(site: Site, backed_up: int, job_name: str) -> None:
    before = {j["jobid"] for j in jobs(site)}
    assert job(site, f"run job={job_name} yes")["jobstatus"] == "T", messages(site.inst)
    copies = [j for j in _new_rows(site, before) if j["type"] == "C"]
    assert [c["priorjobid"] for c in copies] == [backed_up]


def test_nothing_to_do_is_ok(site: Site, backed_up: int) -> None:
    assert job(site, "run job=copy-none yes")["jobstatus"] == "T"
    assert "nothing to do" in messages(site.inst)
    # every Source job has a copy by now
    assert job(site, "run job=copy-uncopied yes")["jobstatus"] == "T"
    assert "nothing to do" in messages(site.inst)


def test_restore_reads_a_copy_when_the_original_volumes_are_gone(
    site: Site, backed_up: int
) -> None:
    (vols,) = run(site.inst, "list volumes pool=Source")
    names = [v["volumename"] for v in vols["volumes"] if v["pool"] == "Source"]
    for name in names:
        run(site.inst, f"update volume={name} volstatus=Error")
    try:
        text = restore_and_compare(
            site, f"client={site.inst.layout.client} fileset=CopySet", "from-copy"
        )
        assert '"copies_used": {"1":' in text
    finally:
        for name in names:
            run(site.inst, f"update volume={name} volstatus=Append")


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("copy-tape", "media type mismatch"),
        ("copy-nowhere", "cannot connect"),
    ],
)
def test_copy_failures_end_in_error_and_release_devices(
    site: Site, backed_up: int, kind: str, message: str
) -> None:
    before = {j["jobid"] for j in jobs(site)}
    control = job(site, f"run job={kind} yes")
    assert control["jobstatus"] == "E"
    assert message in messages(site.inst)
    new = _new_rows(site, before)
    assert all(j["jobstatus"] != "T" for j in new if j["type"] == "C")
    no_reservations(site)


def test_missing_read_volume_fails_the_copy(site: Site, backed_up: int, tmp_path: Path) -> None:
    (vols,) = run(site.inst, "list volumes pool=Source")
    names = [v["volumename"] for v in vols["volumes"] if v["pool"] == "Source"]
    storage = site.inst.layout.storage_dir
    for name in names:
        shutil.move(storage / name, tmp_path / name)
    try:
        before = {j["jobid"] for j in jobs(site)}
        assert job(site, "run job=copy-remote yes")["jobstatus"] == "E"
        assert "not found" in messages(site.inst)
        assert all(j["jobstatus"] != "T" for j in _new_rows(site, before) if j["type"] == "C")
        no_reservations(site)
    finally:
        for name in names:
            shutil.move(tmp_path / name, storage / name)


def test_copy_promotion_after_deleting_the_original(site: Site, backed_up: int) -> None:
    copies = [
        j
        for j in jobs(site)
        if j["type"] == "C" and j["priorjobid"] == backed_up and j["jobstatus"] == "T"
    ]
    assert copies
    (deleted,) = run(site.inst, f"delete jobid={backed_up} yes")
    promoted = deleted["delete"][0]["promoted"]
    assert sorted(promoted) == sorted(c["jobid"] for c in copies)
    rows = {j["jobid"]: j for j in jobs(site)}
    assert all(rows[p]["type"] == "B" for p in promoted)
    restore_and_compare(site, f"client={site.inst.layout.client} fileset=CopySet", "promoted")


@pytest.mark.parametrize(
    ("job_name", "remote"), [("migrate-local", False), ("migrate-remote", True)]
)
def test_migrate_then_restore_latest(site: Site, job_name: str, remote: bool) -> None:
    time.sleep(1.1)
    source = job(site, "run job=src level=Full yes")
    assert source["jobstatus"] == "T"
    before = {j["jobid"] for j in jobs(site)}
    control = job(site, f"run job={job_name} yes")
    assert control["jobstatus"] == "T", messages(site.inst)
    rows = {j["jobid"]: j for j in jobs(site)}
    assert rows[source["jobid"]]["type"] == "M"
    migrated = [
        j
        for j in _new_rows(site, before)
        if j["type"] == "B" and j["priorjobid"] == source["jobid"]
    ]
    assert len(migrated) == 1 and migrated[0]["jobstatus"] == "T"
    assert migrated[0]["starttime"] == source["starttime"]
    restore_and_compare(site, f"client={site.inst.layout.client} fileset=CopySet", job_name)
    no_reservations(site)


def _start_and_freeze_mid_copy(site: Site, reading_sd: int) -> int:
    """Run copy-big and SIGSTOP the reading SD as soon as the writing SD's volumes grow.

    The 400 MiB copy takes about half a second; a status poll through the Director can take longer,
    and a CI run saw the copy end before the test acted. The volume files are watched every 2 ms
    instead, and the reading SD is frozen mid-stream so that what the test does next (cancel, kill)
    happens while data is moving, whatever the machine's speed.
    """
    storage2 = site.root / "storage2"

    def written() -> int:
        return sum(f.stat().st_size for f in storage2.iterdir())

    before = written()
    (started,) = run(site.inst, "run job=copy-big yes")
    deadline = time.monotonic() + 60
    while written() < before + 8 * MIB:
        if time.monotonic() > deadline:
            raise AssertionError("the copy never started moving data")
        time.sleep(0.002)
    os.kill(reading_sd, signal.SIGSTOP)
    return int(started["run"]["jobid"])


def _reading_sd(site: Site) -> tuple[launcher.DaemonProcess, int]:
    sd1 = next(p for p in processes(site.root) if p.prog == "strongroom-sd")
    pid = launcher.running_pid(sd1.pid_file)
    assert pid is not None
    return sd1, pid


@pytest.fixture(scope="module")
def big_backup(site: Site) -> int:
    row = job(site, "run job=bigsrc level=Full yes")
    assert row["jobstatus"] == "T", messages(site.inst)
    return int(row["jobid"])


def test_cancel_a_running_remote_copy(site: Site, big_backup: int) -> None:
    before = {j["jobid"] for j in jobs(site)}
    _sd1, pid = _reading_sd(site)
    jobid = _start_and_freeze_mid_copy(site, pid)
    try:
        run(site.inst, f"cancel jobid={jobid}")
    finally:
        os.kill(pid, signal.SIGCONT)
    run(site.inst, f"wait jobid={jobid}")
    (listed,) = run(site.inst, f"list jobid={jobid}")
    assert listed["jobs"][0]["jobstatus"] == "A"
    workers = [j for j in _new_rows(site, before) if j["type"] == "C"]
    assert workers and all(w["jobstatus"] == "A" for w in workers)
    no_reservations(site)


def test_reading_sd_killed_mid_stream(site: Site, big_backup: int) -> None:
    before = {j["jobid"] for j in jobs(site)}
    sd1, pid = _reading_sd(site)
    jobid = _start_and_freeze_mid_copy(site, pid)
    os.kill(pid, signal.SIGKILL)
    try:
        run(site.inst, f"wait jobid={jobid}")
        (listed,) = run(site.inst, f"list jobid={jobid}")
        assert listed["jobs"][0]["jobstatus"] == "E"
        workers = [j for j in _new_rows(site, before) if j["type"] == "C"]
        assert workers and all(w["jobstatus"] == "E" for w in workers)
        (status,) = run(site.inst, "status storage=File2")
        assert status["storage"]["running_jobs"] == []
    finally:
        sd1.pid_file.unlink(missing_ok=True)
        launcher.start(sd1)
    no_reservations(site)
