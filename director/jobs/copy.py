"""Copy and Migrate: a control job selects backup jobs and submits one worker job per selected job.

Target resolution (one documented order): the `nextpool=` run override, else the Job's `Next Pool`,
else the source Pool's `Next Pool`. The target storage is the target Pool's `Storage`, else the Job's
`Storage`. The source pool is the `pool=` run override, else the Job's `Pool`. The source storage is
the one the source volumes were written on (from the catalog).

The control job holds no Director, Client or Storage slot (Bareos: `MigrateJobId == 0` skips them);
its workers are queued like any job (the way Bareos runs `run job=… jobid=<src>`), run as the
admission rules allow — one at a time under the default `Maximum Concurrent Jobs = 1` of the Job —
and the control job ends when they all have: T when every worker did, E when one failed, A when it
was canceled (its workers with it). The worker itself is `copy_worker`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import re
import time
from typing import TYPE_CHECKING, Final

from common.aio import first_set
from director.catalog import JobRow
from director.jobs import status as st
from director.jobs.errors import JobCanceled, JobError
from director.jobs.plans import CopyPlan
from director.jobs.request import RunRequest

if TYPE_CHECKING:
    from director.catalog import Catalog
    from director.config import DirectorConfig, JobResource
    from director.jobs.control import JobControl
    from director.jobs.services import JobServices

STOP_WAIT: Final = 30.0  # a canceled control job waits this long for its workers to end

SELECTION_TYPES = (
    "Job",
    "Client",
    "Volume",
    "SQLQuery",
    "PoolUncopiedJobs",
    "PoolTime",
    "OldestVolume",
)


@dataclasses.dataclass(frozen=True)
class Targets:
    source_pool: str
    target_pool: str
    target_storage: str


def resolve_targets(
    config: DirectorConfig,
    resource: JobResource,
    pool_override: str | None,
    next_pool_override: str | None,
) -> Targets:
    source_pool = pool_override or resource.pool
    if not source_pool:
        raise JobError(f"{resource.type} job {resource.name!r} names no Pool to select from")
    target = next_pool_override or resource.next_pool or config.pools[source_pool].next_pool
    if not target:
        raise JobError(
            f"no target pool: set Next Pool on Job {resource.name!r} or on Pool {source_pool!r}, "
            "or run with nextpool="
        )
    if target not in config.pools:
        raise JobError(f"target pool {target!r} does not exist")
    pool = config.pools[target]
    storage = (pool.storage[0] if pool.storage else None) or (
        resource.storage[0] if resource.storage else None
    )
    if not storage:
        raise JobError(
            f"no target storage: set Storage on Pool {target!r} or on Job {resource.name!r}"
        )
    return Targets(source_pool, target, storage)


def select_jobs(
    catalog: Catalog, config: DirectorConfig, resource: JobResource, source_pool: str
) -> list[JobRow]:
    """The backup jobs a Copy/Migrate job takes (runs on the catalog thread)."""
    kind = resource.selection_type or "Job"
    if kind not in SELECTION_TYPES:
        raise JobError(f"unknown Selection Type {kind!r} (use {', '.join(SELECTION_TYPES)})")
    pattern = resource.selection_pattern or ""
    pool_ids = {p["poolid"] for p in catalog.list_pools() if p["name"] == source_pool}
    jobs = [
        j
        for j in catalog.list_jobs(job_type="B")
        if j.status in ("T", "W") and j.pool_id in pool_ids
    ]
    if kind in ("Job", "Client") and not pattern:
        raise JobError(f"Selection Type = {kind} needs a Selection Pattern (a regular expression)")
    if kind == "Job":
        regex = re.compile(pattern)
        return [j for j in jobs if regex.search(j.name)]
    if kind == "Client":
        regex = re.compile(pattern)
        return [j for j in jobs if j.client and regex.search(j.client)]
    if kind == "SQLQuery":
        wanted = set(catalog.run_select(pattern))
        return [j for j in jobs if j.job_id in wanted]
    if kind == "PoolUncopiedJobs":
        return [j for j in jobs if not catalog.copies_of(j.job_id)]
    if kind == "PoolTime":
        age = config.pools[source_pool].migration_time
        if age is None:
            raise JobError(
                f"Selection Type = PoolTime needs Migration Time on Pool {source_pool!r}"
            )
        cutoff = time.time() - age
        return [j for j in jobs if (j.end_time or 0) <= cutoff]
    media = [m for m in catalog.list_media(None) if m.pool_id in pool_ids]
    jobmedia = catalog.list_jobmedia([j.job_id for j in jobs])
    if kind == "Volume":
        regex = re.compile(pattern or ".*")
        names = {m.volume_name for m in media if regex.search(m.volume_name)}
    else:  # OldestVolume
        used = [m for m in media if any(jm.volume_name == m.volume_name for jm in jobmedia)]
        oldest = min(used, key=lambda m: (m.last_written or 0, m.media_id), default=None)
        names = {oldest.volume_name} if oldest else set()
    ids = {jm.job_id for jm in jobmedia if jm.volume_name in names}
    return [j for j in jobs if j.job_id in ids]


async def do_copy(svc: JobServices, jcr: JobControl) -> str:
    """The control job: select, submit one worker per selected job, wait for them all."""
    config = jcr.settings
    resource = jcr.resource
    migrate = jcr.job_type == "g"
    targets = resolve_targets(config, resource, jcr.pool, jcr.next_pool)
    selected: list[JobRow] = await svc.db.run(
        functools.partial(
            select_jobs, config=config, resource=resource, source_pool=targets.source_pool
        )
    )
    what = "migrate" if migrate else "copy"
    if not selected:
        svc.joblog(
            jcr,
            "info",
            f"No JobIds found to {what}: nothing to do "
            f"(Selection Type = {resource.selection_type or 'Job'}, pool {targets.source_pool})",
        )
        return st.TERMINATED
    svc.joblog(
        jcr,
        "info",
        f"The following {len(selected)} JobId(s) were chosen to be "
        f"{'migrated' if migrate else 'copied'}: " + ",".join(str(j.job_id) for j in selected),
    )
    workers: list[tuple[JobRow, JobControl]] = []
    failed = 0
    try:
        for source in selected:
            if jcr.canceled.is_set():
                raise JobCanceled()
            read_storage = await _read_storage(svc, jcr, source, targets)
            if read_storage is None:
                failed += 1
                continue
            req = RunRequest(
                job=resource.name,
                priority=jcr.priority,
                parent_job_id=jcr.job_id,
                params=CopyPlan.params(
                    source.job_id,
                    migrate,
                    read_storage,
                    targets.target_pool,
                    targets.target_storage,
                ),
            )
            worker = await svc.submit(req)
            svc.joblog(
                jcr, "info", f"JobId {source.job_id}: {what} queued as JobId {worker.job_id}"
            )
            workers.append((source, worker))
        for source, worker in workers:
            if await first_set([worker.done, jcr.canceled]) is not worker.done:
                raise JobCanceled()
            failed += _report_worker(svc, jcr, source, worker, migrate)
    finally:
        await _stop_workers(svc, jcr, [w for _s, w in workers])
    if failed:
        raise JobError(f"{failed} of {len(selected)} {what} worker job(s) failed; see the job log")
    return st.TERMINATED


async def _read_storage(
    svc: JobServices, jcr: JobControl, source: JobRow, targets: Targets
) -> str | None:
    """The Storage the source volumes were written on (None: the job has no volumes)."""
    jobmedia = await svc.db.list_jobmedia([source.job_id])
    if not jobmedia:
        svc.joblog(jcr, "error", f"JobId {source.job_id} has no volumes recorded; skipped")
        return None
    media = await svc.db.get_media(jobmedia[0].volume_name)
    storages = jcr.settings.storages
    if media is not None and media.storage in storages:
        return media.storage
    return jcr.resource.storage[0] if jcr.resource.storage else targets.target_storage


def _report_worker(
    svc: JobServices, jcr: JobControl, source: JobRow, worker: JobControl, migrate: bool
) -> int:
    """Log how a worker ended; 1 when it failed."""
    if worker.status in st.OK:
        jcr.files += 1
        svc.joblog(
            jcr,
            "info",
            f"JobId {worker.job_id}: {'migrated' if migrate else 'copied'} JobId "
            f"{source.job_id}, {worker.files:,} files, {worker.bytes:,} bytes",
        )
        return 0
    svc.joblog(
        jcr,
        "error",
        f"JobId {worker.job_id} ({'migrate' if migrate else 'copy'} of JobId "
        f"{source.job_id}) ended {worker.status}: {st.describe(worker.status)}",
    )
    return 1


async def _stop_workers(svc: JobServices, jcr: JobControl, workers: list[JobControl]) -> None:
    """A control job that ends early (canceled, the Director stopping) takes its workers along,
    and ends only after they have, so no worker outlives the job that started it."""
    live = [w for w in workers if not w.done.is_set()]
    if not live:
        return
    reason = f"its {jcr.type_name} control job JobId {jcr.job_id} was canceled"
    for worker in live:
        svc.cancel_job(worker, reason)
    waiters = [asyncio.ensure_future(w.done.wait()) for w in live]
    try:
        await asyncio.wait(waiters, timeout=STOP_WAIT)
    finally:
        for waiter in waiters:
            waiter.cancel()
