"""Storage faults with real daemons: a flipped byte, a zeroed tail, a full disk, a killed Storage
Daemon. Each asserts the job's final status and message, and that every earlier good job still
restores exactly: "T" always means restorable, and damage never spreads to good backups.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console import launcher
from console.admin import processes
from storaged.volume import VolumeReader
from tests.support.trees import compare_trees, make_hostile_tree
from tests.system.conftest import Installation, _install
from tests.system.test_backup_restore import messages, run, stripped

MIB = 1024 * 1024
TINY_FS = 24 * MIB


def _tree(root: Path, files: int, size: int) -> Path:
    make_hostile_tree(root, sparse_size=4 * MIB)
    (root / "bulk").mkdir()
    for n in range(files):
        (root / "bulk" / f"f{n:03d}").write_bytes(os.urandom(size))
    return root


def _job(etc: Path, name: str, tree: Path, pool: str, storage: str) -> None:
    (etc / "fileset" / f"{name}.conf").write_text(
        f"FileSet {{\n  Name = {name}\n  Include {{\n    Options {{\n      Signature = SHA256\n      Sparse = yes\n"
        f'    }}\n    File = "{tree}"\n  }}\n}}\n'
    )
    (etc / "job" / f"{name}.conf").write_text(
        f"Job {{\n  Name = {name}\n  JobDefs = DefaultJob\n  FileSet = {name}\n  Pool = {pool}\n"
        f"  Full Backup Pool = {pool}\n  Storage = {storage}\n}}\n"
    )


def _mount_tiny(path: Path) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TINY_FS}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    root = tmp_path_factory.mktemp("faults")
    trees = root / "trees"
    _tree(trees / "small-a", files=4, size=MIB)
    _tree(trees / "small-b", files=4, size=MIB)
    _tree(trees / "small-c", files=4, size=MIB)
    _tree(trees / "big", files=60, size=MIB)  # more than the tiny filesystem holds
    tiny = root / "tiny"
    mounted = _mount_tiny(tiny)

    def configure(inst: Installation) -> None:
        etc = inst.root / "etc" / "strongroom-dir.d"
        storage = (etc / "storage" / "File.conf").read_text()
        (etc / "storage" / "Tiny.conf").write_text(
            storage.replace("Name = File", "Name = Tiny").replace(
                "Device = FileStorage", "Device = TinyDevice"
            )
        )
        (etc / "pool" / "Flip.conf").write_text(
            'Pool {\n  Name = Flip\n  Pool Type = Backup\n  Label Format = "Flip-"\n}\n'
        )
        _job(etc, "flip-good", trees / "small-a", "Flip", "File")
        _job(etc, "flip-hit", trees / "small-b", "Flip", "File")
        (etc / "pool" / "Tiny.conf").write_text(
            'Pool {\n  Name = Tiny\n  Pool Type = Backup\n  Storage = Tiny\n  Label Format = "Tiny-"\n}\n'
        )
        for name in ("small-a", "small-b", "small-c", "big"):
            _job(etc, name, trees / name, "Full", "File")
        _job(etc, "tiny-good", trees / "small-a", "Tiny", "Tiny")
        _job(etc, "tiny-big", trees / "big", "Tiny", "Tiny")
        sd = inst.root / "etc" / "strongroom-sd.d" / "device"
        device = (sd / "FileStorage.conf").read_text()
        (sd / "TinyDevice.conf").write_text(
            device.replace("Name = FileStorage", "Name = TinyDevice").replace(
                str(inst.root / "storage"), str(tiny)
            )
        )

    installs = _install(root, tls=True, before_start=configure)
    inst = next(installs)
    inst.tiny_mounted = mounted  # type: ignore[attr-defined]  # a test-only flag on the fixture object
    try:
        yield inst
    finally:
        with contextlib.suppress(StopIteration):
            next(installs)
        if mounted:
            subprocess.run(["umount", "-l", str(tiny)], check=False)


def _run_full(inst: Installation, name: str) -> dict[str, Any]:
    (started,) = run(inst, f"run job={name} level=Full yes")
    return _wait(inst, int(started["run"]["jobid"]))


def _wait(inst: Installation, jobid: int) -> dict[str, Any]:
    run(inst, f"wait jobid={jobid}", timeout=600)
    (listed,) = run(inst, f"list jobid={jobid}")
    return dict(listed["jobs"][0])


def _restore(inst: Installation, jobid: int, tag: str) -> tuple[dict[str, Any], Path]:
    where = inst.root / "restores" / tag
    (started,) = run(inst, f'restore jobid={jobid} where="{where}" all yes')
    return _wait(inst, int(started["restore"]["jobid"])), where


def _restores_exactly(inst: Installation, jobid: int, tree: str, tag: str) -> None:
    row, where = _restore(inst, jobid, tag)
    assert row["jobstatus"] == "T", messages(inst)
    src = inst.root / "trees" / tree
    assert compare_trees(src, where / str(src).lstrip("/")) == stripped(src)


def _volume_of(inst: Installation, jobid: int) -> Path:
    (listed,) = run(inst, "list volumes")
    (row,) = run(inst, f"list jobid={jobid}")
    session = row["jobs"][0]["volsessionid"]
    for volume in listed["volumes"]:
        if volume["pool"] != "Full":  # the Flip volume is damaged on purpose
            continue
        path = inst.root / "storage" / volume["volumename"]
        if path.exists() and any(
            r.session_id == session for r in VolumeReader(path).records() if r.file_index > 0
        ):
            return path
    raise AssertionError(f"no volume holds job {jobid}")


def test_flipped_byte_fails_that_restore_only(site: Installation) -> None:
    good = _run_full(site, "flip-good")  # a pool of their own: the damaged volume is theirs alone
    hit = _run_full(site, "flip-hit")
    assert good["jobstatus"] == hit["jobstatus"] == "T", messages(site)
    path = site.root / "storage" / "Flip-0001"
    session = hit["volsessionid"]
    offsets = sorted(
        {
            r.position.offset
            for r in VolumeReader(path).records()
            if r.session_id == session and r.file_index > 0
        }
    )
    raw = bytearray(path.read_bytes())
    target = offsets[len(offsets) // 2] + 4096  # inside a data block of the hit job
    raw[target] ^= 0x10
    path.write_bytes(bytes(raw))

    row, _where = _restore(site, hit["jobid"], "flipped")
    text = messages(site)
    assert row["jobstatus"] == "E", text
    assert "checksum mismatch" in text, text
    _restores_exactly(
        site, good["jobid"], "small-a", "flipped-good"
    )  # the good job's blocks are intact


def test_zeroed_tail_is_cut_and_the_next_job_appends(site: Installation) -> None:
    first = _run_full(site, "small-a")
    assert first["jobstatus"] == "T", messages(site)
    path = _volume_of(site, first["jobid"])
    good_size = path.stat().st_size
    with path.open("ab") as f:
        f.write(bytes(64 * 1024))  # a crash after the file grew, before its data reached the disk
    nxt = _run_full(site, "small-c")
    text = messages(site)
    assert nxt["jobstatus"] == "T", text
    assert "zeroed tail" in text and "65536 bytes" in text, text
    assert path.stat().st_size > good_size
    _restores_exactly(site, first["jobid"], "small-a", "tail-first")
    _restores_exactly(site, nxt["jobid"], "small-c", "tail-next")


def test_full_disk_mid_backup_cuts_back_and_never_ends_t(site: Installation) -> None:
    if not getattr(site, "tiny_mounted", False):
        pytest.skip(
            "cannot mount a tmpfs here (needs root): the full-disk row needs a small filesystem"
        )
    good = _run_full(site, "tiny-good")
    assert good["jobstatus"] == "T", messages(site)
    row = _run_full(site, "tiny-big")
    assert row["jobstatus"] == "E", messages(site)
    text = messages(site)
    assert "No space left on device" in text, text
    (listed,) = run(site, "list volumes")
    tiny = [v for v in listed["volumes"] if v["pool"] == "Tiny"]
    first = next(v for v in tiny if v["volumename"] == "Tiny-0001")
    assert first["volstatus"] == "Full", tiny
    volume = site.root / "tiny" / "Tiny-0001"
    assert (
        first["volbytes"] == volume.stat().st_size
    )  # cut back to its last good block, and the catalog knows
    list(VolumeReader(volume).records())  # every block on it is whole and checks
    # Space comes back: the good job restores exactly, and a new job can use the pool again.
    for extra in (site.root / "tiny").glob("Tiny-*"):
        if extra.name != "Tiny-0001":
            extra.unlink()
    _restores_exactly(site, good["jobid"], "small-a", "tiny-good")


def test_storage_daemon_killed_mid_backup(site: Installation) -> None:
    earlier = _run_full(site, "small-a")
    assert earlier["jobstatus"] == "T", messages(site)
    path = _volume_of(site, earlier["jobid"])
    size = path.stat().st_size
    sd = next(p for p in processes(site.root) if p.prog == "strongroom-sd")
    pid = launcher.running_pid(sd.pid_file)
    assert pid is not None
    (started,) = run(site, "run job=big level=Full yes")
    jobid = int(started["run"]["jobid"])
    deadline = time.monotonic() + 120
    while path.stat().st_size < size + 8 * MIB:
        assert time.monotonic() < deadline, "the backup never started writing"
        time.sleep(0.002)
    os.kill(pid, signal.SIGKILL)
    try:
        row = _wait(site, jobid)
        text = messages(site)
        assert row["jobstatus"] == "E", text
        assert "storage" in text.lower(), text
    finally:
        sd.pid_file.unlink(missing_ok=True)
        launcher.start(sd)
    after = _run_full(site, "small-c")
    assert after["jobstatus"] == "T", messages(site)
    _restores_exactly(site, earlier["jobid"], "small-a", "killed-earlier")
    _restores_exactly(site, after["jobid"], "small-c", "killed-after")
    (status,) = run(site, "status storage=File")
    assert status["storage"]["running_jobs"] == [], status
