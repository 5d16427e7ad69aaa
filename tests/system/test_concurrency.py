"""Concurrent jobs through one Storage Daemon device: shared volumes, device waits, exact restores.

Eight Fulls of eight different trees append to one volume through one Device with Maximum
Concurrent Jobs = 8 (their blocks interleave on the volume); three jobs through a Device with
Maximum Concurrent Jobs = 1 wait for it, with the reason visible while they wait. Every job ends
T and every restore is byte- and attribute-identical to its tree.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console import launcher
from console.admin import processes
from tests.support.trees import compare_trees, make_hostile_tree
from tests.system.conftest import Installation, _install
from tests.system.test_backup_restore import messages, run, stripped

MIB = 1024 * 1024
PARALLEL = 8
SERIAL = 3


def _tree(root: Path, seed: int, files: int, size: int) -> None:
    make_hostile_tree(root, sparse_size=8 * MIB)
    bulk = root / "bulk"
    bulk.mkdir()
    for n in range(files):
        (bulk / f"file-{seed}-{n:03d}.bin").write_bytes(os.urandom(size))


def _configure(inst: Installation) -> None:
    root = inst.root
    etc = root / "etc" / "strongroom-dir.d"
    client = next((etc / "client").glob("*.conf"))
    client.write_text(
        client.read_text().replace(
            "  Catalog = MyCatalog\n", "  Catalog = MyCatalog\n  Maximum Concurrent Jobs = 20\n"
        )
    )
    director = next((etc / "director").glob("*.conf"))
    director.write_text(
        director.read_text().replace("Maximum Concurrent Jobs = 10", "Maximum Concurrent Jobs = 20")
    )
    storage = (etc / "storage" / "File.conf").read_text()
    (etc / "storage" / "Serial.conf").write_text(
        storage.replace("Name = File", "Name = Serial").replace(
            "Device = FileStorage", "Device = SerialDevice"
        )
    )
    (etc / "pool" / "SerialPool.conf").write_text(
        'Pool {\n  Name = SerialPool\n  Pool Type = Backup\n  Storage = Serial\n  Label Format = "Serial-"\n}\n'
    )
    for n in range(PARALLEL):
        _job(etc, f"par-{n}", root / "trees" / f"par-{n}", pool="Full")
    for n in range(SERIAL):
        _job(etc, f"ser-{n}", root / "trees" / f"ser-{n}", pool="SerialPool")
    sd = root / "etc" / "strongroom-sd.d" / "device"
    device = (sd / "FileStorage.conf").read_text()
    (sd / "FileStorage.conf").write_text(
        device.replace(
            "  Label Media = yes\n",
            f"  Label Media = yes\n  Maximum Concurrent Jobs = {PARALLEL}\n",
        )
    )
    (root / "storage-serial").mkdir()
    (sd / "SerialDevice.conf").write_text(
        device.replace("Name = FileStorage", "Name = SerialDevice")
        .replace(str(root / "storage"), str(root / "storage-serial"))
        .replace("  Label Media = yes\n", "  Label Media = yes\n  Maximum Concurrent Jobs = 1\n")
    )


def _job(etc: Path, name: str, tree: Path, pool: str) -> None:
    (etc / "fileset" / f"{name}.conf").write_text(
        f"FileSet {{\n  Name = {name}\n  Include {{\n    Options {{\n      Signature = SHA256\n"
        f'      Compression = LZ4\n      Sparse = yes\n    }}\n    File = "{tree}"\n  }}\n}}\n'
    )
    (etc / "job" / f"{name}.conf").write_text(
        f"Job {{\n  Name = {name}\n  JobDefs = DefaultJob\n  FileSet = {name}\n  Pool = {pool}\n"
        f"  Full Backup Pool = {pool}\n  Storage = {'Serial' if pool == 'SerialPool' else 'File'}\n}}\n"
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    root = tmp_path_factory.mktemp("concurrency")
    for n in range(PARALLEL):
        _tree(root / "trees" / f"par-{n}", n, files=12, size=MIB)
    for n in range(SERIAL):
        _tree(root / "trees" / f"ser-{n}", 100 + n, files=40, size=MIB)
    installs = _install(root, tls=True, before_start=_configure)
    inst = next(installs)
    try:
        yield inst
    finally:
        with pytest.raises(StopIteration):
            next(installs)


def _start(inst: Installation, *names: str) -> list[int]:
    replies = run(inst, *(f"run job={name} level=Full yes" for name in names))
    return [int(r["run"]["jobid"]) for r in replies]


def _rows(inst: Installation, jobids: list[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for jobid in jobids:
        run(inst, f"wait jobid={jobid}", timeout=600)
        (listed,) = run(inst, f"list jobid={jobid}")
        out[jobid] = dict(listed["jobs"][0])
    return out


def _restore_all(inst: Installation, jobs: dict[str, int], tag: str) -> None:
    """Restore every job at once (they read the same device) and compare each with its tree."""
    wheres = {name: inst.root / "restores" / tag / name for name in jobs}
    replies = run(
        inst,
        *(f'restore jobid={jobid} where="{wheres[name]}" all yes' for name, jobid in jobs.items()),
    )
    restore_ids = [int(r["restore"]["jobid"]) for r in replies]
    rows = _rows(inst, restore_ids)
    assert all(row["jobstatus"] == "T" for row in rows.values()), (rows, messages(inst))
    for name in jobs:
        tree = inst.root / "trees" / name
        assert compare_trees(tree, wheres[name] / str(tree).lstrip("/")) == stripped(tree), name


def test_eight_fulls_share_one_volume_and_restore_exactly(site: Installation) -> None:
    from storaged.volume import VolumeReader

    names = [f"par-{n}" for n in range(PARALLEL)]
    jobids = _start(site, *names)
    rows = _rows(site, jobids)
    assert [row["jobstatus"] for row in rows.values()] == ["T"] * PARALLEL, messages(site)

    (volumes,) = run(site, "list volumes")
    full = [v for v in volumes["volumes"] if v["pool"] == "Full"]
    assert len(full) == 1, full  # all eight appended to the same volume
    volume = full[0]
    path = site.root / "storage" / volume["volumename"]
    assert volume["voljobs"] == PARALLEL
    assert volume["volfiles"] == sum(row["jobfiles"] for row in rows.values())
    assert volume["volbytes"] == path.stat().st_size

    # The sessions really ran at once: their blocks interleave on the volume.
    owners = [r.session_id for r in VolumeReader(path).records() if r.file_index > 0]
    switches = sum(1 for a, b in itertools.pairwise(owners) if a != b)
    assert switches > PARALLEL, f"only {switches} session switches: the jobs did not overlap"

    _restore_all(site, dict(zip(names, jobids, strict=True)), "parallel")
    (status,) = run(site, "status storage=File")
    assert status["storage"]["running_jobs"] == [], status


def test_a_busy_device_makes_jobs_wait_with_a_reason(site: Installation) -> None:
    """The first job holds the device (its File Daemon is frozen mid-backup, so the test does not
    race the machine's speed); the two others wait for the device with the reason in all views."""
    names = [f"ser-{n}" for n in range(SERIAL)]
    archive = site.root / "storage-serial"
    (first,) = _start(site, names[0])
    deadline = time.monotonic() + 120
    while sum(f.stat().st_size for f in archive.iterdir()) < 4 * MIB:
        assert time.monotonic() < deadline, "the first job never started writing"
        time.sleep(0.002)
    fd = launcher.running_pid(
        next(p for p in processes(site.root) if p.prog == "strongroom-fd").pid_file
    )
    assert fd is not None
    os.kill(fd, signal.SIGSTOP)
    try:
        jobids = [first, *_start(site, *names[1:])]
        seen_dir = seen_list = seen_storage = False
        deadline = time.monotonic() + 60
        while not (seen_dir and seen_list and seen_storage):
            assert time.monotonic() < deadline, (seen_dir, seen_list, seen_storage)
            status_dir, listed, status_sd = run(
                site, "status dir", "list jobs", "status storage=Serial"
            )
            shown = json.dumps(status_dir)
            seen_dir = seen_dir or (
                '"waiting_for_device"' in shown and '"device=SerialDevice"' in shown
            )
            waiting = {
                j["jobid"]
                for j in listed["jobs"]
                if j.get("wait_reason") == "waiting_for_device device=SerialDevice"
            }
            seen_list = seen_list or waiting == set(jobids[1:])
            devices = status_sd["storage"].get("devices", [])
            seen_storage = seen_storage or any(
                d["name"] == "SerialDevice" and len(d["waiting"]) == 2 for d in devices
            )
    finally:
        os.kill(fd, signal.SIGCONT)
    rows = _rows(site, jobids)
    assert [row["jobstatus"] for row in rows.values()] == ["T"] * SERIAL, messages(site)
    _restore_all(site, dict(zip(names, jobids, strict=True)), "serial")
