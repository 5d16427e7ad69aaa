"""Copy and Migrate: a control job selects backup jobs; one worker job per selected job moves its data.

Target resolution (one documented order): the `nextpool=` run override, else the Job's `Next Pool`,
else the source Pool's `Next Pool`. The target storage is the target Pool's `Storage`, else the Job's
`Storage`. The source pool is the `pool=` run override, else the Job's `Pool`. The source storage is
the one the source volumes were written on (from the catalog).

Local (both storages on the same Storage Daemon): one SD job reads from a read device and appends to
a write device. Remote: the writing SD is set up and put in listen mode (status S), then the reading
SD is told to replicate to it with the writing job's one-time key.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from common.net import Connection
from director.catalog import JobRow, NewJob
from director.jobs import status as st
from director.jobs.attributes import AttributeSink
from director.jobs.control import JobControl
from director.jobs.errors import JobCanceled, JobError
from director.jobs.links import connect, device_wait, request, serve_job, storage_wait
from director.jobs.volumes import assign_volume, record_jobmedia, record_volume_update
from protocol.conversations import DIRECTOR_FROM_SD, Conversation
from protocol.jobs import (
    AttributeBatch,
    BootstrapSpec,
    JobEnd,
    JobMediaReport,
    JobMessage,
    Ok,
    SdJobAccepted,
    SdJobSetup,
    SdReplicate,
    SdRun,
    VolumeRequest,
    VolumeUpdate,
)
from protocol.messages import ErrorReply

if TYPE_CHECKING:
    from director.catalog import Catalog, JobMediaRow, MediaRow
    from director.config import DirectorConfig, JobResource, PoolResource, StorageResource
    from director.jobs.services import JobServices

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
    """The control job: select, then run one worker per selected job, in order."""
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
    worst = st.TERMINATED
    for source in selected:
        if jcr.canceled.is_set():
            raise JobCanceled()
        status = await _worker(svc, jcr, source, targets, migrate)
        jcr.files += 1 if status in st.OK else 0
        if status not in st.OK:
            worst = status if status == st.CANCELED else st.ERROR
    if worst == st.CANCELED:
        raise JobCanceled()
    if worst != st.TERMINATED:
        raise JobError(f"at least one {what} worker job failed; see the job log")
    return st.TERMINATED


def _bootstrap(source: JobRow, jobmedia: list[JobMediaRow]) -> tuple[BootstrapSpec, ...]:
    return tuple(
        BootstrapSpec(
            volume_name=jm.volume_name,
            session_id=jm.session_id,
            session_time=jm.session_time,
            file_indexes=((jm.first_index, jm.last_index),),
            start_block=jm.start_block,
            start_addr=jm.start_addr,
            job_id=source.job_id,
        )
        for jm in jobmedia
    )


async def _worker(
    svc: JobServices, control: JobControl, source: JobRow, targets: Targets, migrate: bool
) -> str:
    """One worker: a new job row (C for a copy, B for the migrated job) filled from the source's records."""
    config = control.settings
    jobmedia = await svc.db.list_jobmedia([source.job_id])
    if not jobmedia:
        svc.joblog(control, "error", f"JobId {source.job_id} has no volumes recorded; skipped")
        return st.ERROR
    media = await svc.db.get_media(jobmedia[0].volume_name)
    source_storage_name = (
        media.storage if media and media.storage in config.storages else None
    ) or (control.resource.storage[0] if control.resource.storage else targets.target_storage)
    source_storage = config.storages[source_storage_name]
    target_storage = config.storages[targets.target_storage]
    target_pool = config.pools[targets.target_pool]
    pool_id = await svc.ensure_pool(target_pool.name)
    unique = svc.namer.make(source.name)
    new_id = await svc.db.create_job(
        NewJob(
            job=unique,
            name=source.name,
            type="B" if migrate else "C",
            level=source.level,
            client_id=source.client_id,
            fileset_id=source.fileset_id,
            pool_id=pool_id,
            sched_time=source.sched_time or time.time(),
            status=st.RUNNING,
            prior_job_id=source.job_id,
        )
    )
    worker = JobControl(
        job_id=new_id,
        unique=unique,
        name=source.name,
        job_type="B" if migrate else "C",
        level=source.level,
        resource=control.resource,
        client=source.client,
        fileset=source.fileset,
        pool=target_pool.name,
        storage=target_storage.name,
        priority=control.priority,
        allow_mixed=control.allow_mixed,
        sched_time=time.time(),
        canceled=control.canceled,
    )
    worker.config, worker.pool_id = config, pool_id
    worker.client_id, worker.fileset_id = source.client_id, source.fileset_id
    worker.start_time = time.time()
    # A worker changes status as every job does: its row, events, log and hooks (Transitions).
    svc.transitions.attach(worker).set_status(st.RUNNING)
    local = (source_storage.address, source_storage.port) == (
        target_storage.address,
        target_storage.port,
    )
    svc.joblog(
        control,
        "info",
        f"{'Migrating' if migrate else 'Copying'} JobId {source.job_id} to new JobId "
        f"{new_id} ({unique}): {source_storage.name} → {target_storage.name} "
        f"(pool {target_pool.name}, {'local' if local else 'remote'})",
    )
    reason = ""
    try:
        move = Move(source, jobmedia, source_storage, target_storage, target_pool, media)
        ends = await (_local if local else _remote)(svc, worker, move)
        status = st.TERMINATED if all(e.status in st.OK for e in ends.values()) else st.ERROR
        if status != st.TERMINATED:
            reason = "; ".join(
                f"{k}: {e.status} {e.text}".strip()
                for k, e in ends.items()
                if e.status not in st.OK
            )
    except JobCanceled:
        status, reason = st.CANCELED, "canceled"
    except JobError as exc:
        status, reason = st.ERROR, str(exc)
    now = time.time()
    if status == st.TERMINATED:
        await svc.db.copy_deleted_files(source.job_id, new_id)
        # The new record stands for the same backup: it keeps the source's times (as Bareos does).
        await svc.transitions.end(
            worker,
            status,
            SchedTime=source.sched_time,
            StartTime=source.start_time,
            EndTime=source.end_time,
            RealEndTime=now,
            JobTDate=int(source.start_time or now),
            JobFiles=worker.files,
            JobBytes=worker.bytes,
            Level=source.level,
        )
        if migrate:
            await svc.db.update_job(source.job_id, Type="M")
        svc.joblog(
            control,
            "info",
            f"JobId {new_id}: {'migrated' if migrate else 'copied'} JobId "
            f"{source.job_id}, {worker.files:,} files, {worker.bytes:,} bytes",
        )
    else:
        await svc.transitions.end(
            worker,
            status,
            EndTime=now,
            RealEndTime=now,
            JobFiles=worker.files,
            JobBytes=worker.bytes,
            Comment=reason[:250],
        )
        svc.joblog(
            control,
            "error",
            f"JobId {new_id} ({'migrate' if migrate else 'copy'} of JobId "
            f"{source.job_id}) ended {status}: {reason}",
        )
    return status


def _setup(
    worker: JobControl, source: JobRow, device: str, media_type: str, **kw: Any
) -> SdJobSetup:
    return SdJobSetup(
        job_id=worker.job_id,
        job=worker.unique,
        job_name=worker.name,
        client=source.client or "",
        fileset=source.fileset or "",
        job_type=worker.job_type,
        level=source.level,
        device=device,
        media_type=media_type,
        **kw,
    )


def _device(storage: StorageResource) -> str:
    return str(storage.device[0] if storage.device else storage.name)


def _devices(storage: StorageResource) -> tuple[str, ...]:
    """Every device of the Storage resource: the SD reserves the first one free."""
    return tuple(str(d) for d in storage.device)


@dataclasses.dataclass(frozen=True)
class Move:
    """What one worker moves, from where to where."""

    source: JobRow
    jobmedia: list[JobMediaRow]
    source_storage: StorageResource
    target_storage: StorageResource
    target_pool: PoolResource
    media: MediaRow | None


async def _local(svc: JobServices, worker: JobControl, move: Move) -> dict[str, JobEnd]:
    source, jobmedia, media = move.source, move.jobmedia, move.media
    source_storage, target_storage, target_pool = (
        move.source_storage,
        move.target_storage,
        move.target_pool,
    )
    assignment = await assign_volume(svc, worker, target_pool, target_storage)
    sd = await connect(svc, "storage", target_storage)
    try:
        accepted = await request(
            sd,
            _setup(
                worker,
                source,
                _device(target_storage),
                target_storage.media_type or "File",
                append=True,
                volume=assignment,
                bootstrap=_bootstrap(source, jobmedia),
                read_device=_device(source_storage),
                read_media_type=media.media_type if media else None,
                devices=_devices(target_storage),
            ),
            SdJobAccepted,
            "storage job setup (local copy)",
            canceled=worker.canceled,
            on_wait=device_wait(worker, target_storage.name, partial(svc.joblog, worker)),
        )
        worker.wait = None
        await _started(svc, worker, accepted)
        await request(sd, SdRun(), Ok, "storage run")
        return await _converse(svc, worker, {"writing SD": sd}, target_pool, target_storage)
    finally:
        await sd.close(terminate=True)


async def _remote(svc: JobServices, worker: JobControl, move: Move) -> dict[str, JobEnd]:
    source, jobmedia, media = move.source, move.jobmedia, move.media
    source_storage, target_storage, target_pool = (
        move.source_storage,
        move.target_storage,
        move.target_pool,
    )
    assignment = await assign_volume(svc, worker, target_pool, target_storage)
    writing = await connect(svc, "storage", target_storage)
    reading: Connection | None = None
    try:
        accepted = await request(
            writing,
            _setup(
                worker,
                source,
                _device(target_storage),
                target_storage.media_type or "File",
                append=True,
                volume=assignment,
                listen=True,
                devices=_devices(target_storage),
            ),
            SdJobAccepted,
            "writing storage job setup",
            canceled=worker.canceled,
            on_wait=device_wait(worker, target_storage.name, partial(svc.joblog, worker)),
        )
        worker.wait = None
        await _started(svc, worker, accepted)
        reading = await connect(svc, "storage", source_storage)
        await request(
            reading,
            _setup(
                worker,
                source,
                _device(source_storage),
                (media.media_type if media else None) or "File",
                append=False,
                bootstrap=_bootstrap(source, jobmedia),
                devices=_devices(source_storage),
            ),
            SdJobAccepted,
            "reading storage job setup",
            canceled=worker.canceled,
            on_wait=device_wait(worker, source_storage.name, partial(svc.joblog, worker)),
        )
        worker.wait = None
        await request(writing, SdRun(), Ok, "writing storage listen")
        worker.set_wait(storage_wait(target_storage.name))
        await request(
            reading,
            SdReplicate(
                address=target_storage.address,
                port=target_storage.port,
                job=worker.unique,
                key=accepted.key,
                tls=bool(target_storage.tls_enable and source_storage.tls_enable),
            ),
            Ok,
            "reading storage replicate",
        )
        worker.set_status(st.RUNNING)
        return await _converse(
            svc, worker, {"writing SD": writing, "reading SD": reading}, target_pool, target_storage
        )
    finally:
        for conn in (reading, writing):
            if conn is not None:
                await conn.close(terminate=True)


async def _started(svc: JobServices, worker: JobControl, accepted: SdJobAccepted) -> None:
    worker.session = (accepted.session_id, accepted.session_time)
    await svc.db.update_job(
        worker.job_id,
        VolSessionId=accepted.session_id,
        VolSessionTime=accepted.session_time,
        StartTime=time.time(),
    )


async def _converse(
    svc: JobServices,
    worker: JobControl,
    conns: dict[str, Connection],
    pool: PoolResource,
    storage: StorageResource,
) -> dict[str, JobEnd]:
    """Serve the SD connections until each has sent its JobEnd; the writing SD's attributes become File rows."""
    ends: dict[str, JobEnd] = {}
    sink = AttributeSink(svc.db.insert_files, worker.job_id)

    async def reader(label: str, conn: Connection) -> None:
        talk = Conversation(f"Director <- {label} (copy)", DIRECTOR_FROM_SD)
        while label not in ends:
            msg = await conn.recv_message()
            talk.receive(msg)  # an unexpected message is a ProtocolError naming it
            match msg:
                case AttributeBatch():
                    for file_index, stream, payload in msg.records:
                        sink.add(file_index, stream, payload)
                    worker.progress.files = sink.files
                    await sink.maybe_flush()
                case JobMediaReport():
                    await record_jobmedia(svc, worker, msg)
                case VolumeUpdate():
                    await record_volume_update(svc, worker, msg)
                case VolumeRequest():
                    await conn.send(
                        await assign_volume(svc, worker, pool, storage, exclude=(msg.full_volume,))
                    )
                case JobMessage():
                    svc.joblog(worker, msg.level, f"{label}: {msg.text}")
                case JobEnd():
                    ends[label] = msg
                case ErrorReply():
                    raise JobError(f"{label}: {msg.code} {msg.text}")

    await serve_job(worker, list(conns.values()), [reader(k, c) for k, c in conns.items()], "copy")
    await sink.flush()
    writing = ends["writing SD"]
    worker.files, worker.bytes = writing.files, writing.bytes
    if worker.canceled.is_set() or any(e.status == st.CANCELED for e in ends.values()):
        raise JobCanceled()
    return ends
