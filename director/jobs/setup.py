"""RunJob → SetupJob → JobqAdd: resolve a Job resource with overrides into a queued JobControl."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from director.catalog import DuplicateJobName, JobRow, NewJob
from director.fileset_spec import fileset_spec
from director.jobs import status as st
from director.jobs.control import LEVEL_CODES, TYPE_CODES, JobControl
from director.jobs.errors import JobError
from director.jobs.levels import resolve_level
from director.jobs.plans import CopyPlan, CopyRequest, RestorePlan
from director.jobs.request import RunRequest, dumps

if TYPE_CHECKING:
    from director.config import DirectorConfig, FileSetResource, JobResource
    from director.jobs.services import JobServices

__all__ = ["Resolved", "RunRequest", "fileset_hash", "prepare_backup", "resolve", "setup_job"]


@dataclass(frozen=True)
class Resolved:
    """The resources a job will use, after overrides and pool-per-level rules."""

    resource: JobResource
    job_type: str
    level: str
    client: str | None
    fileset: str | None
    pool: str | None
    storage: str | None
    priority: int


def resolve(config: DirectorConfig, req: RunRequest) -> Resolved:
    """Apply run overrides to the Job resource (pure, so `run` can print it before asking)."""
    resource = config.jobs.get(req.job)
    if resource is None:
        raise JobError(f"no Job resource named {req.job!r}")
    job_type = TYPE_CODES.get(resource.type or "Backup", "B")
    level_name = req.level or resource.level or ("Incremental" if job_type == "B" else "")
    level_key = next((k for k in LEVEL_CODES if k.lower() == level_name.lower()), None)
    if job_type == "B" and level_key is None:
        raise JobError(f"unknown level {level_name!r}; use Full, Incremental or Differential")
    level = LEVEL_CODES[level_key] if level_key else " "
    client = req.client or resource.client
    fileset = req.fileset or resource.file_set
    storage = req.storage or (resource.storage[0] if resource.storage else None)
    pool = req.pool
    if pool is None and job_type == "B":
        pool = {
            "F": resource.full_backup_pool,
            "I": resource.incremental_backup_pool,
            "D": resource.differential_backup_pool,
        }.get(level) or resource.pool
    pool = pool or resource.pool
    _require_resources(
        ("Client", client, config.clients),
        ("FileSet", fileset, config.filesets),
        ("Pool", pool, config.pools),
        ("Storage", storage, config.storages),
    )
    if job_type in ("B", "R") and (client is None or storage is None):
        raise JobError(f"job {req.job!r} needs a Client and a Storage")
    return Resolved(
        resource,
        job_type,
        level,
        client,
        fileset,
        pool,
        storage,
        req.priority if req.priority is not None else resource.priority,
    )


def _require_resources(*named: tuple[str, str | None, Mapping[str, object]]) -> None:
    """Each (kind, name, resources) names a configured resource, or no resource (None)."""
    for kind, name, table in named:
        if name is not None and name not in table:
            raise JobError(f"no {kind} resource named {name!r}")


def fileset_hash(fileset: FileSetResource) -> str:
    return hashlib.md5(
        repr(fileset.model_dump(exclude={"source"})).encode(), usedforsecurity=False
    ).hexdigest()


async def setup_job(
    svc: JobServices, req: RunRequest, existing: JobRow | None = None
) -> JobControl:
    """SetupJob: unique name, catalog Job row (the JobId exists before the job runs), level/since.

    `existing` is a queued job the catalog kept across a Director restart: it keeps its JobId and
    name and is set up again from its saved request."""
    worker = CopyPlan.requested(req.params)
    if worker is not None:
        return await setup_copy_worker(svc, req, worker, existing)
    config = svc.current_config()
    resolved = resolve(config, req)
    now = time.time()
    sched_time = req.when or now
    client_id = await svc.db.ensure_client(resolved.client) if resolved.client else None
    fileset_id = None
    if resolved.fileset:
        fileset_id = await svc.db.ensure_fileset(
            resolved.fileset, fileset_hash(config.filesets[resolved.fileset])
        )
    pool_id = await svc.ensure_pool(resolved.pool) if resolved.pool else None
    if existing is None:
        job_id, unique = await _create_row(
            svc,
            req,
            NewJob(
                job="",
                name=resolved.resource.name,
                type=resolved.job_type,
                level=resolved.level,
                client_id=client_id,
                fileset_id=fileset_id,
                pool_id=pool_id,
                sched_time=sched_time,
                priority=resolved.priority,
                retry=req.retry,
                expires_at=req.expires,
                parent_job_id=req.parent_job_id,
            ),
        )
    else:
        unique, job_id = existing.job, existing.job_id
    jcr = JobControl(
        job_id=job_id,
        unique=unique,
        name=resolved.resource.name,
        job_type=resolved.job_type,
        level=resolved.level,
        resource=resolved.resource,
        client=resolved.client,
        fileset=resolved.fileset,
        pool=resolved.pool,
        storage=resolved.storage,
        priority=resolved.priority,
        allow_mixed=bool(resolved.resource.allow_mixed_priority),
        sched_time=sched_time,
        # A multi-action parent and a Copy/Migrate control job hold no Director, Client or
        # Storage slot: their actions and workers do.
        coordinator=bool(resolved.resource.action) or resolved.job_type in ("c", "g"),
    )
    jcr.config, jcr.client_id, jcr.fileset_id, jcr.pool_id = config, client_id, fileset_id, pool_id
    jcr.request, jcr.retry, jcr.retry_of = req, req.retry, req.retry_of
    jcr.parent_job_id, jcr.expires = req.parent_job_id, req.expires
    if jcr.job_type == "R":
        jcr.restore = RestorePlan.from_params(req.params)
    jcr.next_pool = req.text("next_pool")
    if existing is None:
        retry = f", retry {req.retry} of JobId {req.retry_of}" if req.retry else ""
        svc.joblog(
            jcr,
            "info",
            f"Created {jcr.type_name} job {unique} (JobId {job_id}){retry}, status {st.CREATED}",
        )
    else:
        svc.joblog(jcr, "info", f"Queued again after a Director restart (JobId {job_id})")
    return jcr


async def _create_row(svc: JobServices, req: RunRequest, row: NewJob) -> tuple[int, str]:
    """The catalog Job row, under a unique name, with the run request kept for a restart."""
    try:
        saved: str | None = dumps(req)
    except TypeError as exc:
        saved = None
        svc.log.warning("run_request_not_durable", job=req.job, reason=str(exc))
    for _attempt in range(100):
        unique = svc.namer.make(row.name, time.time())
        try:
            job_id = await svc.db.create_job(replace(row, job=unique, request=saved))
            return job_id, unique
        except DuplicateJobName:
            continue
    raise JobError(f"cannot find a free unique name for job {row.name!r}")


async def setup_copy_worker(
    svc: JobServices, req: RunRequest, worker: CopyRequest, existing: JobRow | None
) -> JobControl:
    """A Copy/Migrate worker: a new Job row for the copy (Type C; Type B for a migration) that
    names the source as PriorJobId, keeps its client, fileset and level, and is written to the
    target pool. It is queued and run like any job (admission, events, hooks, cancel)."""
    config = svc.current_config()
    resource = config.jobs.get(req.job)
    if resource is None:
        raise JobError(f"no Job resource named {req.job!r}")
    source = await svc.db.get_job(worker.source_job_id)
    if source is None:
        raise JobError(f"source JobId {worker.source_job_id} is no longer in the catalog")
    _require_resources(
        ("Pool", worker.target_pool, config.pools),
        ("Storage", worker.target_storage, config.storages),
        ("Storage", worker.read_storage, config.storages),
    )
    pool_id = await svc.ensure_pool(worker.target_pool)
    job_type = "B" if worker.migrate else "C"
    now = time.time()
    priority = req.priority if req.priority is not None else resource.priority
    if existing is None:
        job_id, unique = await _create_row(
            svc,
            req,
            NewJob(
                job="",
                name=source.name,
                type=job_type,
                level=source.level,
                client_id=source.client_id,
                fileset_id=source.fileset_id,
                pool_id=pool_id,
                sched_time=req.when or now,
                priority=priority,
                prior_job_id=source.job_id,
                parent_job_id=req.parent_job_id,
            ),
        )
    else:
        unique, job_id = existing.job, existing.job_id
    jcr = JobControl(
        job_id=job_id,
        unique=unique,
        name=source.name,
        job_type=job_type,
        level=source.level,
        resource=resource,
        client=source.client,
        fileset=source.fileset,
        pool=worker.target_pool,
        storage=worker.target_storage,
        priority=priority,
        allow_mixed=bool(resource.allow_mixed_priority),
        sched_time=req.when or now,
    )
    jcr.config, jcr.pool_id = config, pool_id
    jcr.client_id, jcr.fileset_id = source.client_id, source.fileset_id
    jcr.request, jcr.parent_job_id = req, req.parent_job_id
    jcr.copy = worker.plan(source)
    what = "Migrate" if worker.migrate else "Copy"
    svc.joblog(
        jcr,
        "info",
        f"Created {what} worker {unique} (JobId {job_id}) of JobId {source.job_id} for "
        f"JobId {req.parent_job_id}, status {st.CREATED}",
    )
    return jcr


async def prepare_backup(svc: JobServices, jcr: JobControl) -> None:
    """GetLevelSinceTime as the job starts, not when it was queued: the since-time then counts the
    backups that ended while this one waited, and a queued job holds no accurate list."""
    if jcr.job_type != "B" or jcr.copy is not None or not jcr.fileset:
        return
    config = jcr.settings
    level, pool = jcr.level, jcr.pool
    jcr.backup.fileset_spec = fileset_spec(config.filesets[jcr.fileset])
    await resolve_level(svc, jcr)
    if jcr.pool != pool:
        jcr.pool_id = await svc.ensure_pool(jcr.pool)
    if (jcr.level, jcr.pool) != (level, pool):
        await svc.writer.update_job(jcr.job_id, Level=jcr.level, PoolId=jcr.pool_id)
