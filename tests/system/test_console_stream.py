"""`list files` of a 200,000-file job through srconsole (#15): complete, in parts under the frame
limit, printed as they arrive, with the Director's memory flat while it streams."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.system.conftest import Installation, _install
from tests.system.test_backup_restore import run

FILES = 200_000
DIRS = 20
RSS_GROWTH_LIMIT = 40 * 1024 * 1024  # a whole listing in memory costs several times this


def _configure(inst: Installation) -> None:
    src = inst.root / "many"
    for d in range(DIRS):
        folder = src / f"dir-{d:02d}"
        folder.mkdir(parents=True)
        for n in range(FILES // DIRS):
            (folder / f"file-{n:05d}").touch()  # empty files: cheap to make, back up and list
    etc = inst.root / "etc" / "strongroom-dir.d"
    (etc / "fileset" / "Many.conf").write_text(
        f'FileSet {{\n  Name = Many\n  Include {{\n    File = "{src}"\n  }}\n}}\n'
    )
    (etc / "job" / "many.conf").write_text(
        "Job {\n  Name = many\n  JobDefs = DefaultJob\n  FileSet = Many\n}\n"
    )


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Any:
    yield from _install(tmp_path_factory.mktemp("many"), tls=True, before_start=_configure)


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


@pytest.mark.timeout(1500)
def test_list_files_of_a_200000_file_job_streams_with_flat_memory(many: Installation) -> None:
    inst = many
    (started,) = run(inst, "run job=many level=Full yes")
    jobid = started["run"]["jobid"]
    run(inst, f"wait jobid={jobid}", timeout=1200)
    (listed,) = run(inst, f"list jobid={jobid}")
    assert listed["jobs"][0]["jobstatus"] == "T", listed
    assert listed["jobs"][0]["jobfiles"] >= FILES

    (window,) = run(inst, f"list files jobid={jobid} limit=5 offset=100")
    assert len(window["files"]) == 5

    director = inst.pids["strongroom-dir"]
    run(
        inst, f"list files jobid={jobid} limit=2000"
    )  # warm up: the pages, the SQLite cache, the buffers
    baseline = _rss(director)
    peak = baseline
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.05):
            peak = max(peak, _rss(director))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "console", "-c", str(inst.layout.console_config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out, err = proc.communicate(f"list files jobid={jobid}\n", timeout=600)
    finally:
        stop.set()
        sampler.join()
    assert proc.returncode == 0, err[-2000:]
    assert "connection to Director lost" not in err
    paths = [line for line in out.splitlines() if "/many/dir-" in line]
    src = inst.root / "many"
    assert len([p for p in paths if "/file-" in p]) == FILES
    assert str(src / f"dir-{DIRS - 1:02d}" / f"file-{FILES // DIRS - 1:05d}") in paths
    assert peak - baseline < RSS_GROWTH_LIMIT, (
        f"Director RSS grew {(peak - baseline) / 2**20:.1f} MiB while listing"
    )
