"""Every benchmark of bench/ still runs and prints its figures, at a size that takes seconds.

The targets of issue #14 live in these scripts, never in a timed test: nothing here looks at a
figure, only that each script ends well and prints the lines its figures are read from (and,
where it compares a restore with its source, that the restore was exact). The scripts that
need the peer bench's installation (`peer_restore.sh`, `peer_profile.sh`, `thread_states.py`)
are not run. No bench holds a memory ballast here (STRONGROOM_BENCH_BALLAST=no).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"

pytestmark = pytest.mark.system


def _run(args: list[str], *, timeout: float = 110) -> str:
    env = {**os.environ, "STRONGROOM_BENCH_BALLAST": "no"}
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    return out


def _tree(root: Path) -> Path:
    """A few directories of small and one larger file."""
    for d in range(3):
        sub = root / f"d{d}"
        sub.mkdir(parents=True)
        for f in range(20):
            (sub / f"f{f}").write_bytes(os.urandom(100 + 37 * f))
    (root / "large").write_bytes(os.urandom(3 * 2**20 + 5))
    return root


@pytest.mark.parametrize(
    ("script", "args", "expected"),
    [
        (
            "backup_restore.py",
            ["--scale", "0.01"],
            ["full backup vs tar -cf:", "restore vs tar -xf:", "peak RSS strongroom-fd"],
        ),
        (
            "million_files.py",
            ["--files", "2000", "--no-ballast"],
            ["restored 2,000 files of 2,000 (all there)", "browse one directory of the Full:"],
        ),
        (
            "concurrent_backup.py",
            ["--jobs", "2", "--mib", "4", "--rounds", "1"],
            ["aggregate vs one job at a time:"],
        ),
        ("copy_jobs.py", ["--scale", "0.01"], ["remote copy vs local copy:"]),
        ("profile_stages.py", ["--scale", "0.01"], ["full-small", "restore-small"]),
    ],
)
def test_a_bench_on_real_daemons_runs(
    tmp_path: Path, script: str, args: list[str], expected: list[str]
) -> None:
    out = _run([str(BENCH / script), "--dir", str(tmp_path / "bench"), *args])
    for line in expected:
        assert line in out, out[-4000:]


@pytest.mark.parametrize("split", [0, 2])
def test_the_restore_writer_bench_restores_exactly(tmp_path: Path, split: int) -> None:
    tree = _tree(tmp_path / "tree")
    args = [str(BENCH / "restore_writer.py"), str(tree), "--out", str(tmp_path / "out")]
    out = _run([*args, "--reps", "1", *(["--split", str(split)] if split else [])])
    runs = [line for line in out.splitlines() if line.endswith("differences")]
    assert len(runs) == (2 if split else 1), out
    assert all(line.endswith(" 0 errors, 0 differences") for line in runs), out
    if split:
        assert any("2 processes" in line for line in runs), out


@pytest.mark.parametrize(
    ("script", "args", "expected"),
    [
        ("accurate_list.py", ["--files", "5000"], ["new: files=5000"]),
        ("decode_batches.py", ["--records", "1000", "--rounds", "1"], ["accurate"]),
        ("receive_frames.py", ["--frames", "20"], ["receiver CPU"]),
        ("job_queue.py", ["--jobs", "20"], ["catalog job statuses: {'T': 20}"]),
        ("schedules.py", ["--count", "10"], ["next run of all:", "slowest forms"]),
    ],
)
def test_an_offline_bench_runs(
    tmp_path: Path, script: str, args: list[str], expected: list[str]
) -> None:
    takes_dir = script in ("accurate_list.py", "job_queue.py")
    extra = ["--dir", str(tmp_path / "bench")] if takes_dir else []
    out = _run([str(BENCH / script), *args, *extra])
    for line in expected:
        assert line in out, out[-4000:]
