"""Queue admission rules, table-driven: priorities, mixed priority, each concurrency limit, wait reasons."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from director.jobs.admission import Candidate, Limits, WaitReason, admit


def job(
    job_id: int,
    priority: int = 10,
    *,
    name: str = "j",
    client: str | None = "c1",
    storage: str = "s1",
    mixed: bool = False,
) -> Candidate:
    return Candidate(job_id, name, priority, mixed, client, (storage,))


WIDE = Limits(
    director=10,
    jobs={"j": 10, "k": 10},
    clients={"c1": 10, "c2": 10},
    storages={"s1": 10, "s2": 10},
)

CASES = [
    pytest.param([job(1), job(2)], [], WIDE, (1, 2), {}, id="equal-priorities-fifo"),
    pytest.param(
        [job(1, 5), job(2, 10)], [], WIDE, (1,), {2: ("p", "priority")}, id="lower-priority-waits"
    ),
    pytest.param(
        [job(2, 10)],
        [job(1, 5)],
        WIDE,
        (),
        {2: ("p", "priority")},
        id="running-higher-blocks-lower",
    ),
    pytest.param(
        [job(2, 5)],
        [job(1, 10)],
        WIDE,
        (),
        {2: ("p", "priority")},
        id="more-important-waits-without-mixing",
    ),
    pytest.param(
        [job(2, 5, mixed=True)], [job(1, 10, mixed=True)], WIDE, (2,), {}, id="mixed-both-sides"
    ),
    pytest.param(
        [job(2, 5, mixed=True)],
        [job(1, 10)],
        WIDE,
        (),
        {2: ("p", "priority")},
        id="mixed-only-one-side",
    ),
    pytest.param(
        [job(1, 5), job(2, 10), job(3, 5)],
        [],
        WIDE,
        (1,),
        {2: ("p", "priority"), 3: ("p", "priority")},
        id="first-ineligible-stops-scan",
    ),
    pytest.param(
        [job(1), job(2), job(3)],
        [],
        Limits(director=2, jobs={"j": 9}, clients={"c1": 9}, storages={"s1": 9}),
        (1, 2),
        {3: ("d", "max_director_jobs")},
        id="director-limit",
    ),
    pytest.param(
        [job(1), job(2)],
        [],
        Limits(director=9, jobs={"j": 9}, clients={"c1": 1}, storages={"s1": 9}),
        (1,),
        {2: ("c", "max_client_jobs")},
        id="client-limit",
    ),
    pytest.param(
        [job(1), job(2)],
        [],
        Limits(director=9, jobs={"j": 9}, clients={"c1": 9}, storages={"s1": 1}),
        (1,),
        {2: ("s", "max_storage_jobs")},
        id="storage-limit",
    ),
    pytest.param(
        [job(1), job(2)],
        [],
        Limits(director=9, jobs={"j": 1}, clients={"c1": 9}, storages={"s1": 9}),
        (1,),
        {2: ("j", "max_job_jobs")},
        id="job-limit",
    ),
    pytest.param(
        [job(1), job(2, client="c2", name="k")],
        [],
        Limits(director=9, clients={"c1": 1, "c2": 1}, storages={"s1": 9}, jobs={"j": 9, "k": 9}),
        (1, 2),
        {},
        id="other-client-passes",
    ),
    pytest.param(
        [job(2), job(3, client="c2", name="k")],
        [job(1)],
        Limits(director=9, clients={"c1": 1, "c2": 1}, storages={"s1": 9}, jobs={"j": 9, "k": 9}),
        (3,),
        {2: ("c", "max_client_jobs")},
        id="slot-wait-does-not-stop-scan",
    ),
    pytest.param(
        [job(1, storage="s1"), job(2, storage="s2", name="k")],
        [],
        Limits(director=9, clients={"c1": 9}, storages={"s1": 1, "s2": 1}, jobs={"j": 9, "k": 9}),
        (1, 2),
        {},
        id="different-storages",
    ),
    pytest.param([], [job(1)], WIDE, (), {}, id="nothing-waiting"),
]


@pytest.mark.parametrize(("waiting", "running", "limits", "start", "waits"), CASES)
def test_admission(
    waiting: list[Candidate],
    running: list[Candidate],
    limits: Limits,
    start: tuple[int, ...],
    waits: dict[int, tuple[str, str]],
) -> None:
    decision = admit(waiting, running, limits)
    assert decision.start == start
    assert {k: (v.status, v.code) for k, v in decision.waits.items()} == waits


def test_wait_reason_names_the_resource() -> None:
    decision = admit(
        [job(1), job(2)],
        [],
        Limits(director=9, clients={"c1": 1}, storages={"s1": 9}, jobs={"j": 9}),
    )
    assert decision.waits[2].resource == "client=c1"
    assert decision.waits[2].describe() == "max_client_jobs client=c1"


def test_a_lazy_scan_stops_at_the_director_limit_and_names_one_reason_for_the_rest() -> None:
    consumed: list[int] = []

    def waiting() -> Iterator[Candidate]:
        for n in range(1, 10_001):
            consumed.append(n)
            yield job(n)

    decision = admit(
        waiting(),
        [],
        Limits(director=3, jobs={"j": 99}, clients={"c1": 99}, storages={"s1": 99}),
        expand_tail=False,
    )
    assert decision.start == (1, 2, 3)
    assert decision.tail is not None and decision.tail.code == "max_director_jobs"
    assert decision.scanned == 3 and len(consumed) == 4  # the 4th was looked at, not the 10,000


def test_a_lazy_scan_blocked_by_priority_names_priority_for_the_rest() -> None:
    decision = admit([job(1, 5), job(2, 10), job(3, 10)], [], WIDE, expand_tail=False)
    assert decision.start == (1,)
    assert decision.waits[2].code == "priority"
    assert decision.tail is not None and decision.tail.code == "priority" and decision.scanned == 2


def test_a_coordinator_holds_no_slot() -> None:
    parent = Candidate(1, "multi", 10, False, None, (), coordinator=True)
    child = job(2)
    limits = Limits(director=1, jobs={"j": 1, "multi": 1}, clients={"c1": 1}, storages={"s1": 1})
    assert admit([child], [parent], limits).start == (2,)
    assert admit([parent, child], [], limits).start == (1, 2)
    second = Candidate(3, "multi", 10, False, None, (), coordinator=True)
    decision = admit([second], [parent], limits)
    assert (
        decision.start == () and decision.waits[3].code == "max_job_jobs"
    )  # its Job limit still holds


def test_copy_workers_queue_under_their_copy_job_not_behind_the_control_job() -> None:
    """A Copy control job holds its own slot; its workers take the Job's slots one at a time
    (Maximum Concurrent Jobs = 1) plus their read and write storages, and no client slot."""
    control = Candidate(1, "copy", 10, False, None, (), coordinator=True)
    first = Candidate(2, "copy", 10, False, None, ("File", "File2"))
    second = Candidate(3, "copy", 10, False, None, ("File", "File2"))
    limits = Limits(director=1, jobs={"copy": 1}, storages={"File": 5, "File2": 5})
    decision = admit([first, second], [control], limits)
    assert decision.start == (2,)
    assert decision.waits[3].code in ("max_job_jobs", "max_director_jobs")
    wide = Limits(director=10, jobs={"copy": 2}, storages={"File": 5, "File2": 1})
    decision = admit([first, second], [control], wide)
    assert decision.start == (2,) and decision.waits[3] == WaitReason(
        "s", "max_storage_jobs", "storage=File2"
    )
