"""Which waiting jobs may start now, and why the others wait (pure; Bareos jobq rules + wait reasons).

Rules (Bareos `jobq.cc`): the reference priority is that of the first running job (or the head of
the waiting list when nothing runs). A waiting job is eligible when its priority equals the
reference, or is more important and both it and every running job allow mixed priorities. The
first ineligible job stops the scan (`p`), so a less important job never overtakes. Eligible jobs
then take their slots all-or-nothing — Director, Storage, Client, Job `Maximum Concurrent Jobs` —
and a job that cannot get a slot waits with the reason and resource, while the scan continues.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from director.jobs import status


@dataclass(frozen=True)
class Candidate:
    """What admission needs to know about one job."""

    job_id: int
    job_name: str
    priority: int
    allow_mixed: bool
    client: str | None
    storages: tuple[str, ...]
    level: str = " "
    coordinator: bool = False


@dataclass(frozen=True)
class WaitReason:
    """Why a job waits: the status letter, a machine-readable code, and the resource."""

    status: str
    code: str
    resource: str = ""

    def describe(self) -> str:
        return f"{self.code} {self.resource}".strip()


@dataclass(frozen=True)
class Limits:
    """Maximum Concurrent Jobs of the Director and of each Job, Client and Storage resource."""

    director: int
    jobs: Mapping[str, int] = field(default_factory=dict)
    clients: Mapping[str, int] = field(default_factory=dict)
    storages: Mapping[str, int] = field(default_factory=dict)
    default: int = 1


@dataclass(frozen=True)
class Decision:
    start: tuple[int, ...]
    waits: Mapping[int, WaitReason]
    scanned: int = 0  # how many waiting jobs were looked at
    tail: WaitReason | None = None  # with expand_tail=False: the reason of every job not looked at


def admit(
    waiting: Iterable[Candidate],
    running: Sequence[Candidate],
    limits: Limits,
    expand_tail: bool = True,
) -> Decision:
    """Decide which waiting jobs (already in priority/FIFO order) start now.

    Once the Director is full or a priority blocks the scan, every later job waits for the same
    reason; with `expand_tail=False` the scan stops there and returns that reason once (`tail`), so
    admission costs O(jobs that can start) instead of O(queue length) with 10,000 jobs queued."""
    # A coordinator (a multi-action parent, a Copy/Migrate control job) holds a Job slot of its
    # own kind only: its actions or workers, queued under the same Job, never wait for it.
    jobs = Counter(c.job_name for c in running if not c.coordinator)
    coordinators = Counter(c.job_name for c in running if c.coordinator)
    running = [c for c in running if not c.coordinator]
    clients = Counter(c.client for c in running if c.client)
    storages = Counter(s for c in running for s in set(c.storages))
    active = list(running)
    start: list[int] = []
    waits: dict[int, WaitReason] = {}
    items = iter(waiting)
    first = next(items, None)
    if first is None:
        return Decision((), {})
    reference = active[0].priority if active else first.priority
    blocked = False
    scanned = 0
    for cand in _chain(first, items):
        scanned += 1
        if not expand_tail and (blocked or len(active) >= limits.director):
            tail = (
                WaitReason(status.WAIT_PRIORITY, "priority", f"priority={reference}")
                if blocked
                else WaitReason(
                    status.WAIT_MAX_JOBS, "max_director_jobs", f"limit={limits.director}"
                )
            )
            return Decision(tuple(start), waits, scanned - 1, tail)
        if blocked:
            waits[cand.job_id] = WaitReason(
                status.WAIT_PRIORITY, "priority", f"priority={reference}"
            )
            continue
        mix_ok = all(r.allow_mixed for r in active)
        eligible = cand.priority == reference or (
            cand.priority < reference and cand.allow_mixed and mix_ok
        )
        if not eligible:
            blocked = True
            waits[cand.job_id] = WaitReason(
                status.WAIT_PRIORITY, "priority", f"priority={reference}"
            )
            continue
        if cand.coordinator:
            limit = limits.jobs.get(cand.job_name, limits.default)
            if coordinators[cand.job_name] >= limit:
                waits[cand.job_id] = WaitReason(
                    status.WAIT_JOB_RES, "max_job_jobs", f"job={cand.job_name}"
                )
                continue
            coordinators[cand.job_name] += 1
            start.append(cand.job_id)
            continue
        if len(active) >= limits.director:
            waits[cand.job_id] = WaitReason(
                status.WAIT_MAX_JOBS, "max_director_jobs", f"limit={limits.director}"
            )
            continue
        reason = _slot_problem(cand, jobs, clients, storages, limits)
        if reason is not None:
            waits[cand.job_id] = reason
            continue
        jobs[cand.job_name] += 1
        if cand.client:
            clients[cand.client] += 1
        for name in set(cand.storages):
            storages[name] += 1
        active.append(cand)
        start.append(cand.job_id)
    return Decision(tuple(start), waits, scanned)


def _chain(first: Candidate, rest: Iterable[Candidate]) -> Iterable[Candidate]:
    yield first
    yield from rest


def _slot_problem(
    cand: Candidate,
    jobs: Counter[str],
    clients: Counter[str],
    storages: Counter[str],
    limits: Limits,
) -> WaitReason | None:
    for name in set(cand.storages):
        limit = limits.storages.get(name, limits.default)
        if storages[name] >= limit:
            return WaitReason(status.WAIT_STORE_RES, "max_storage_jobs", f"storage={name}")
    if cand.client:
        limit = limits.clients.get(cand.client, limits.default)
        if clients[cand.client] >= limit:
            return WaitReason(status.WAIT_CLIENT_RES, "max_client_jobs", f"client={cand.client}")
    limit = limits.jobs.get(cand.job_name, limits.default)
    if jobs[cand.job_name] >= limit:
        return WaitReason(status.WAIT_JOB_RES, "max_job_jobs", f"job={cand.job_name}")
    return None
