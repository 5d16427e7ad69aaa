"""Jobs given the same new volume label it at once (the Director gives every job of a pool the
first appendable volume): one labels it, every other one finds it whole, never half-made."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from protocol.jobs import VolumeAssignment
from storaged import sessions
from storaged import volume as vol
from tests.unit.storaged.test_sessions_pipeline import _assignment, _job

JOBS = 8
ROUNDS = 25


def _prepare_at_once(archive: Path, assignment: VolumeAssignment) -> list[Path | BaseException]:
    """JOBS jobs preparing `assignment` at the same moment: each one's path, or what it raised."""
    jobs = [_job(archive, assignment) for _ in range(JOBS)]
    start = threading.Barrier(JOBS)
    results: list[Path | BaseException] = []

    def prepare(job: sessions.SdJob) -> None:
        start.wait()
        try:
            results.append(sessions._prepare_volume(job, assignment))
        except BaseException as exc:  # collected: the caller's assertion names it
            results.append(exc)

    threads = [threading.Thread(target=prepare, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_jobs_labeling_one_new_volume_at_once_all_find_its_label(tmp_path: Path) -> None:
    for n in range(1, ROUNDS + 1):
        assignment = _assignment(n)
        results = _prepare_at_once(tmp_path, assignment)
        assert results == [tmp_path / assignment.volume_name] * JOBS, results
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"Full-{n:04d}" for n in range(1, ROUNDS + 1)
    ]  # no temporary file left behind


def test_labeling_an_existing_volume_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "Full-0001"
    label = vol.VolumeLabel("Full-0001", "Full", "Backup", "File", 1.0, "test")
    vol.label_volume(path, label)
    before = path.read_bytes()
    with pytest.raises(vol.VolumeExists, match="refusing to relabel"):
        vol.label_volume(path, label)
    assert path.read_bytes() == before and vol.read_label(path).volume_name == "Full-0001"
