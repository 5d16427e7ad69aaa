"""DoNativeBackup: level and since-time, volume, SD and FD setup, the data flow, the end record."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from common.net import Connection
from director.jobs import status as st
from director.jobs.attributes import AttributeSink
from director.jobs.errors import JobCanceled, JobError
from director.jobs.levels import accurate_batches
from director.jobs.links import (
    client_wait,
    connect,
    request,
    sd_certificate_name,
    serve_job,
    set_up_sd_job,
    storage_wait,
)
from director.jobs.volumes import assign_volume, record_jobmedia, record_volume_update
from protocol.conversations import DIRECTOR_FROM_FD, DIRECTOR_FROM_SD, Conversation
from protocol.frames import Signal
from protocol.jobs import (
    AccurateBatch,
    AttributeBatch,
    FdBackup,
    FdJobSetup,
    FdStorage,
    JobEnd,
    JobMediaReport,
    JobMessage,
    JobProgress,
    JobStatusChange,
    Ok,
    SdJobSetup,
    SdRun,
    VolumeRequest,
    VolumeUpdate,
)
from protocol.messages import ErrorReply

if TYPE_CHECKING:
    from director.config import PoolResource, StorageResource
    from director.jobs.control import JobControl
    from director.jobs.services import JobServices


async def do_backup(svc: JobServices, jcr: JobControl) -> str:
    """Run one backup; returns the final status letter (raises JobError on failure)."""
    config = jcr.settings
    client = config.clients[jcr.named("Client")]
    storage = config.storages[jcr.named("Storage")]
    pool = config.pools[jcr.named("Pool")]
    fileset_spec = jcr.backup.fileset_spec
    if fileset_spec is None:
        raise JobError("the backup has no FileSet")
    assignment = await assign_volume(svc, jcr, pool, storage)
    jcr.set_wait(storage_wait(storage.name))
    sd = await connect(svc, "storage", storage)
    fd: Connection | None = None
    try:
        setup = SdJobSetup(
            job_id=jcr.job_id,
            job=jcr.unique,
            job_name=jcr.name,
            client=jcr.client or "",
            fileset=jcr.fileset or "",
            job_type=jcr.job_type,
            level=jcr.level,
            device=storage.device[0] if storage.device else storage.name,
            devices=tuple(storage.device),
            media_type=storage.media_type or "File",
            append=True,
            volume=assignment,
        )
        accepted = await set_up_sd_job(
            sd,
            jcr,
            setup,
            storage=storage.name,
            joblog=partial(svc.joblog, jcr),
            what="storage job setup",
        )
        jcr.session = (accepted.session_id, accepted.session_time)
        await svc.db.update_job(
            jcr.job_id, VolSessionId=accepted.session_id, VolSessionTime=accepted.session_time
        )
        jcr.set_wait(client_wait(client.name))
        fd = await connect(svc, "client", client)
        accurate = bool(jcr.resource.accurate)
        await fd.send(
            FdJobSetup(
                job_id=jcr.job_id,
                job=jcr.unique,
                job_type=jcr.job_type,
                level=jcr.level,
                since_ns=jcr.since_ns,
                fileset=fileset_spec,
                accurate=accurate,
            )
        )
        if accurate:
            if jcr.level in ("I", "D"):
                async for entries in accurate_batches(svc, jcr):
                    await fd.send(AccurateBatch(entries=tuple(entries)))
            await fd.send_signal(Signal.EOD)
        await _expect_ok(fd, "client job setup")
        await request(sd, SdRun(), Ok, "storage run")
        await request(
            fd,
            FdStorage(
                address=storage.address,
                port=storage.port,
                key=accepted.key,
                tls=bool(storage.tls_enable and svc.tls_enable()),
                name=sd_certificate_name(storage, sd),
            ),
            Ok,
            "client connecting to the storage daemon",
        )
        jcr.set_status(st.RUNNING)
        jcr.moving_data = True
        await request(fd, FdBackup(), Ok, "start backup")
        sink = AttributeSink(svc.db.insert_files, jcr.job_id)
        ends = await _converse(svc, jcr, sd, fd, sink=sink, pool=pool, storage=storage)
        await sink.flush()
    finally:
        for conn in (fd, sd):
            if conn is not None:
                await conn.close(terminate=True)
    return _combine(jcr, ends)


async def _expect_ok(conn: Connection, what: str) -> None:
    reply = await conn.recv_message(timeout=300)
    if isinstance(reply, ErrorReply):
        raise JobError(f"{what}: {reply.code} {reply.text}")
    if not isinstance(reply, Ok):
        raise JobError(f"{what}: unexpected {reply.TYPE!r}")


async def _converse(
    svc: JobServices,
    jcr: JobControl,
    sd: Connection,
    fd: Connection,
    *,
    sink: AttributeSink,
    pool: PoolResource,
    storage: StorageResource,
) -> dict[str, JobEnd]:
    """Serve both daemons until each has sent its JobEnd (or the job is canceled)."""
    ends: dict[str, JobEnd] = {}

    async def from_sd() -> None:
        talk = Conversation(f"Director <- Storage Daemon {storage.name} (backup)", DIRECTOR_FROM_SD)
        while "sd" not in ends:
            msg = await sd.recv_message()
            talk.receive(msg)  # an unexpected message is a ProtocolError naming it
            match msg:
                case AttributeBatch():
                    for file_index, stream, payload in msg.records:
                        sink.add(file_index, stream, payload)
                    jcr.files = sink.files
                    await sink.maybe_flush()
                case JobMediaReport():
                    await record_jobmedia(svc, jcr, msg)
                case VolumeUpdate():
                    await record_volume_update(svc, jcr, msg)
                case VolumeRequest():
                    await sd.send(
                        await assign_volume(svc, jcr, pool, storage, exclude=(msg.full_volume,))
                    )
                case JobMessage():
                    svc.joblog(jcr, msg.level, f"{storage.name}: {msg.text}")
                case JobStatusChange():
                    pass
                case JobEnd():
                    ends["sd"] = msg
                case ErrorReply():
                    raise JobError(f"storage daemon: {msg.code} {msg.text}")

    async def from_fd() -> None:
        talk = Conversation(f"Director <- File Daemon {jcr.client} (backup)", DIRECTOR_FROM_FD)
        while "fd" not in ends:
            msg = await fd.recv_message()
            talk.receive(msg)
            match msg:
                case JobProgress():
                    jcr.progress.files = msg.files
                    jcr.progress.bytes = msg.bytes
                    jcr.progress.current_file = msg.current_file.decode("utf-8", "replace")
                case JobMessage():
                    svc.joblog(jcr, msg.level, f"{jcr.client}: {msg.text}")
                case JobEnd():
                    ends["fd"] = msg
                case ErrorReply():
                    raise JobError(f"file daemon: {msg.code} {msg.text}")

    await serve_job(jcr, [sd, fd], [from_sd(), from_fd()], "backup")
    return ends


def _combine(jcr: JobControl, ends: dict[str, JobEnd]) -> str:
    fd_end, sd_end = ends["fd"], ends["sd"]
    jcr.files = fd_end.files
    jcr.bytes = sd_end.bytes
    jcr.read_bytes = fd_end.read_bytes
    jcr.errors = fd_end.errors + sd_end.errors
    jcr.warnings = fd_end.warnings
    if jcr.canceled.is_set() or "A" in (fd_end.status, sd_end.status):
        raise JobCanceled()
    for side, end in (("File Daemon", fd_end), ("Storage Daemon", sd_end)):
        if end.status not in st.OK:
            raise JobError(
                f"{side} ended the job with status {end.status}: {end.text}".rstrip(": ")
            )
    if fd_end.files != sd_end.files:
        raise JobError(
            f"File Daemon sent {fd_end.files} files but the Storage Daemon stored {sd_end.files}"
        )
    return st.WARNINGS if "W" in (fd_end.status, sd_end.status) else st.TERMINATED
