"""IndexMarks holds what a Python set of (JobId, FileIndex) would, and cuts it into the same runs."""

from __future__ import annotations

import random

import pytest

from director.restore.marks import IndexMarks


def _runs(indexes: set[int]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for index in sorted(indexes):
        if out and out[-1][1] == index - 1:
            out[-1] = (out[-1][0], index)
        else:
            out.append((index, index))
    return tuple(out)


@pytest.mark.parametrize("seed", range(20))
def test_the_same_pairs_count_and_runs_as_a_set(seed: int) -> None:
    rng = random.Random(seed)
    pairs = [
        (rng.choice([1, 7, 12]), rng.randrange(1, rng.choice([3, 50, 5000])))
        for _ in range(rng.randrange(0, 3000))
    ]
    marks = IndexMarks()
    for start in range(0, len(pairs), 97):  # as the walk's pages come
        marks.add(pairs[start : start + 97])
    reference = set(pairs)
    assert len(marks) == len(reference)
    by_job: dict[int, set[int]] = {}
    for job_id, index in reference:
        by_job.setdefault(job_id, set()).add(index)
    assert marks.ranges() == {job_id: _runs(by_job[job_id]) for job_id in sorted(by_job)}
    probes = [(job_id, index) for job_id in (1, 7, 12, 99) for index in range(0, 60)]
    assert marks.missing(probes) == {p for p in probes if p not in reference}


def test_a_run_that_reaches_the_end_of_the_marks_is_closed() -> None:
    marks = IndexMarks()
    marks.add([(3, 1), (3, 2), (3, 3)])
    assert marks.ranges() == {3: ((1, 3),)}
    assert (3, 0) not in marks and (3, 4) not in marks and (4, 1) not in marks


def test_file_index_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="FileIndex 0 of JobId 5"):
        IndexMarks().add([(5, 0)])
