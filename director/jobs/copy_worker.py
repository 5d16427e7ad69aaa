"""A Copy/Migrate worker: move one source job's records to the target pool's storage.

The control job (`copy.do_copy`) selects the source jobs and submits one worker per source job as
an ordinary job (`setup.setup_copy_worker` makes its Job row: Type C for a copy, Type B for a
migration, PriorJobId = the source). The worker runs in the job task like any job: admission
(its read and write storages, its copy Job's slot), status transitions, events, hooks, cancel.

Local (both storages on the same Storage Daemon): one SD job reads from a read device and appends
to a write device. Remote: the writing SD is set up and put in listen mode (status S), then the
reading SD is told to replicate to it with the writing job's one-time key.
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial
from typing import TYPE_CHECKING

from common.net import Connection
from director.catalog import JobRow
from director.jobs import status as st
from director.jobs.attributes import AttributeSink
from director.jobs.control import JobControl
from director.jobs.errors import JobCanceled, JobError
from director.jobs.links import (
    connect,
    request,
    serve_job,
    set_up_sd_job,
    storage_wait,
    verified_names,
)
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
    VolumeAssignment,
    VolumeRequest,
    VolumeUpdate,
)
from protocol.messages import ErrorReply

if TYPE_CHECKING:
    from director.catalog import JobMediaRow, MediaRow
    from director.config import PoolResource, StorageResource
    from director.jobs.plans import CopyPlan
    from director.jobs.services import JobServices


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


async def run_worker(svc: JobServices, worker: JobControl) -> str:
    """Move the source job's records; T only when every SD ended its part OK."""
    plan = _plan(worker)
    config = worker.settings
    source = plan.source
    jobmedia = await svc.db.list_jobmedia([source.job_id])
    if not jobmedia:
        raise JobError(f"JobId {source.job_id} has no volumes recorded")
    media = await svc.db.get_media(jobmedia[0].volume_name)
    source_storage = config.storages[plan.read_storage]
    target_storage = config.storages[plan.target_storage]
    target_pool = config.pools[plan.target_pool]
    local = (source_storage.address, source_storage.port) == (
        target_storage.address,
        target_storage.port,
    )
    svc.joblog(
        worker,
        "info",
        f"{'Migrating' if plan.migrate else 'Copying'} JobId {source.job_id} to JobId "
        f"{worker.job_id} ({worker.unique}): {source_storage.name} → {target_storage.name} "
        f"(pool {target_pool.name}, {'local' if local else 'remote'})",
    )
    move = Move(source, jobmedia, source_storage, target_storage, target_pool, media)
    ends = await (_local if local else _remote)(svc, worker, move)
    failed = {k: e for k, e in ends.items() if e.status not in st.OK}
    if failed:
        raise JobError("; ".join(f"{k}: {e.status} {e.text}".strip() for k, e in failed.items()))
    return st.TERMINATED


async def finish_worker(svc: JobServices, worker: JobControl, final: str, reason: str) -> None:
    """The worker's end record. A copy that ended T stands for the same backup as its source: it
    keeps the source's times and level (as Bareos does); a migration then marks the source M —
    after the new row is T, so a crash in between leaves two restorable jobs, never none."""
    plan = _plan(worker)
    source = plan.source
    now = worker.end_time or time.time()
    if final != st.TERMINATED:
        await svc.transitions.end(
            worker,
            final,
            EndTime=now,
            RealEndTime=now,
            JobFiles=worker.files,
            JobBytes=worker.bytes,
            Comment=reason[:250] if reason else None,
        )
        return
    await svc.db.copy_deleted_files(source.job_id, worker.job_id)
    await svc.transitions.end(
        worker,
        final,
        SchedTime=source.sched_time,
        StartTime=source.start_time,
        EndTime=source.end_time,
        RealEndTime=now,
        JobTDate=int(source.start_time or now),
        JobFiles=worker.files,
        JobBytes=worker.bytes,
        Level=source.level,
    )
    if plan.migrate:
        await svc.db.update_job(source.job_id, Type="M")


def _plan(worker: JobControl) -> CopyPlan:
    assert worker.copy is not None, "a copy worker is set up with its plan"
    return worker.copy


def _setup(
    worker: JobControl,
    source: JobRow,
    device: str,
    media_type: str,
    *,
    append: bool,
    devices: tuple[str, ...],
    volume: VolumeAssignment | None = None,
    bootstrap: tuple[BootstrapSpec, ...] = (),
    read_device: str | None = None,
    read_media_type: str | None = None,
    listen: bool = False,
) -> SdJobSetup:
    """The SD job of a worker: its reading part, its writing part, or both (a local copy)."""
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
        append=append,
        volume=volume,
        devices=devices,
        bootstrap=bootstrap,
        read_device=read_device,
        read_media_type=read_media_type,
        listen=listen,
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
    target = move.target_storage
    assignment = await assign_volume(svc, worker, move.target_pool, target)
    sd = await connect(svc, "storage", target)
    try:
        setup = _setup(
            worker,
            move.source,
            _device(target),
            target.media_type or "File",
            append=True,
            volume=assignment,
            bootstrap=_bootstrap(move.source, move.jobmedia),
            read_device=_device(move.source_storage),
            read_media_type=move.media.media_type if move.media else None,
            devices=_devices(target),
        )
        log = partial(svc.joblog, worker)
        accepted = await set_up_sd_job(
            sd,
            worker,
            setup,
            storage=target.name,
            joblog=log,
            what="storage job setup (local copy)",
        )
        await _started(svc, worker, accepted)
        await request(sd, SdRun(), Ok, "storage run")
        return await _converse(svc, worker, {"writing SD": sd}, move.target_pool, target)
    finally:
        await sd.close(terminate=True)


async def _remote(svc: JobServices, worker: JobControl, move: Move) -> dict[str, JobEnd]:
    source_storage, target_storage = move.source_storage, move.target_storage
    assignment = await assign_volume(svc, worker, move.target_pool, target_storage)
    writing = await connect(svc, "storage", target_storage)
    reading: Connection | None = None
    log = partial(svc.joblog, worker)
    try:
        writer_setup = _setup(
            worker,
            move.source,
            _device(target_storage),
            target_storage.media_type or "File",
            append=True,
            volume=assignment,
            listen=True,
            devices=_devices(target_storage),
        )
        accepted = await set_up_sd_job(
            writing,
            worker,
            writer_setup,
            storage=target_storage.name,
            joblog=log,
            what="writing storage job setup",
        )
        await _started(svc, worker, accepted)
        reading = await connect(svc, "storage", source_storage)
        reader_setup = _setup(
            worker,
            move.source,
            _device(source_storage),
            (move.media.media_type if move.media else None) or "File",
            append=False,
            bootstrap=_bootstrap(move.source, move.jobmedia),
            devices=_devices(source_storage),
        )
        await set_up_sd_job(
            reading,
            worker,
            reader_setup,
            storage=source_storage.name,
            joblog=log,
            what="reading storage job setup",
        )
        await request(
            writing,
            SdRun(peer_names=verified_names(reading)),
            Ok,
            "writing storage listen",
        )
        worker.set_wait(storage_wait(target_storage.name))
        await request(
            reading,
            SdReplicate(
                address=target_storage.address,
                port=target_storage.port,
                job=worker.unique,
                key=accepted.key,
                tls=bool(target_storage.tls_enable and source_storage.tls_enable),
                peer_names=verified_names(writing),
            ),
            Ok,
            "reading storage replicate",
        )
        worker.set_status(st.RUNNING)
        return await _converse(
            svc,
            worker,
            {"writing SD": writing, "reading SD": reading},
            move.target_pool,
            target_storage,
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
