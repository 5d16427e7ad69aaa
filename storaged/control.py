"""The Storage Daemon's Director command loop: status, job setup, run, cancel."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Final

from common.auth import authenticate_initiator
from common.daemon import client_ssl_context
from common.net import Connection, NetError, dial
from common.version import VERSION
from protocol.conversations import SD_FROM_DIRECTOR, Conversation
from protocol.errors import ProtocolError
from protocol.frames import Signal
from protocol.jobs import (
    CancelJob,
    Ok,
    SdJobAccepted,
    SdJobSetup,
    SdJobWaiting,
    SdLabel,
    SdReplicate,
    SdRun,
    VolumeAssignment,
)
from protocol.messages import Code, ErrorReply, Hello, Message, StatusRequest
from protocol.names import name_problem
from storaged import volume as vol
from storaged.binding import PeerBinding
from storaged.jobs import SdJob, SdJobError
from storaged.reservation import Wait
from storaged.sessions import run_local_copy, run_replicate

if TYPE_CHECKING:
    from storaged.daemon import StorageDaemon

WAIT_REPORT: Final = (
    60.0  # a job waiting for a device tells its Director so this often (it is alive)
)


async def serve_director(sd: StorageDaemon, conn: Connection, monitor: bool, log: Any) -> None:
    job: SdJob | None = None
    try:
        while True:
            event = await conn.recv()
            if event is Signal.TERMINATE:
                return
            if isinstance(event, Signal):
                continue
            if monitor and not isinstance(event, StatusRequest):
                await conn.send(
                    ErrorReply(
                        code=Code.SD_MONITOR_ONLY,
                        text="Invalid command for a Director with Monitor directive enabled",
                    )
                )
                continue
            with sd.busy(conn):
                match event:
                    case StatusRequest():
                        await conn.send(sd.status())
                    case SdJobSetup():
                        job = await _setup(sd, conn, event, log)
                    case SdRun() if job is not None:
                        if event.peer_names and job.binding is not None:
                            job.binding = dataclasses.replace(
                                job.binding, verified=event.peer_names
                            )
                        await conn.send(Ok(code=Code.SD_OK, text="OK run"))
                        if job.setup.read_device is not None:
                            await _own(sd, job, conn, log, run_local_copy(job, log))
                        else:
                            await _run(sd, job, conn, log)
                        return
                    case SdReplicate() if job is not None and not job.setup.append:
                        await conn.send(Ok(code=Code.SD_OK, text="OK replicate"))
                        await _own(sd, job, conn, log, _replicate(sd, job, event, log))
                        return
                    case CancelJob():
                        await conn.send(_cancel(sd, event.job))
                    case SdLabel():
                        await conn.send(await asyncio.to_thread(_label, sd, event))
                    case _:
                        await conn.send(
                            ErrorReply(
                                code=Code.SD_UNKNOWN_COMMAND, text=f"Invalid command {event.TYPE!r}"
                            )
                        )
    finally:
        if job is not None and not job.finished.is_set():
            job.abandoned = job.abandoned or "Director connection lost"
            job.canceled.set()
            job.finish("E", job.abandoned)
            sd.registry.release(job)


async def _setup(sd: StorageDaemon, conn: Connection, setup: SdJobSetup, log: Any) -> SdJob | None:
    """Create the job once a device can take it. While it waits, the Director hears why
    (SdJobWaiting, again on every change and every WAIT_REPORT seconds) and may cancel it."""
    waits: asyncio.Queue[Wait] = asyncio.Queue()
    reserving = asyncio.ensure_future(sd.registry.create(setup, waits.put_nowait))
    director: asyncio.Future[Message | Signal] | None = None
    try:
        while not reserving.done():
            if director is None:
                director = asyncio.ensure_future(conn.recv())
            news = asyncio.ensure_future(waits.get())
            pending: set[asyncio.Future[Any]] = {reserving, director, news}
            await asyncio.wait(pending, timeout=WAIT_REPORT, return_when=asyncio.FIRST_COMPLETED)
            if news.done():
                wait = news.result()
                log.info(
                    "job_waiting_for_device", job=setup.job, device=wait.device, reason=wait.text
                )
            else:
                news.cancel()
                wait = None
            if reserving.done():
                break
            if director.done():
                event = (
                    director.result()
                )  # a lost connection raises here: the reservation is withdrawn
                director = None
                if isinstance(event, CancelJob) or event is Signal.TERMINATE:
                    reserving.cancel()
                    if event is not Signal.TERMINATE:
                        await conn.send(
                            ErrorReply(
                                code=Code.SD_NO_SUCH_JOB,
                                text=f"Job {setup.job} canceled while waiting for a device",
                            )
                        )
                    return None
                if isinstance(event, StatusRequest):
                    await conn.send(sd.status())
                continue
            shown = wait or _current_wait(sd, setup.job)
            if shown is not None:
                await conn.send(
                    SdJobWaiting(
                        code=Code.SD_WAITING,
                        reason=shown.code,
                        resource=shown.resource,
                        text=shown.text,
                    )
                )
        job = reserving.result()
    except SdJobError as exc:
        log.warning("job_setup_refused", job=setup.job, reason=str(exc))
        await conn.send(ErrorReply(code=Code.SD_JOB_REFUSED, text=str(exc)))
        return None
    finally:
        if not reserving.done():
            reserving.cancel()
            with contextlib.suppress(asyncio.CancelledError, SdJobError):
                await reserving
        if director is not None and not director.done():
            # Let the canceled receive finish before anyone else reads this connection: two
            # readers at once would lose a frame.
            director.cancel()
            with contextlib.suppress(asyncio.CancelledError, NetError, ProtocolError):
                await director
    job.control = conn
    job.binding = data_peer_binding(sd, setup)
    log.info(
        "job_created",
        job=job.name,
        job_id=setup.job_id,
        device=job.device.name,
        mode="append" if setup.append else "read",
    )
    await conn.send(
        SdJobAccepted(
            code=Code.SD_OK,
            session_id=job.session_id,
            session_time=job.session_time,
            key=job.key,
            device=job.device.name,
        )
    )
    return job


def data_peer_binding(sd: StorageDaemon, setup: SdJobSetup) -> PeerBinding:
    """The certificate a job's data peer must carry (#13): a File Daemon's names the job's client
    (or a name in this SD's TLS Allowed CN); a listening job's peer is a Storage Daemon."""
    if setup.listen:
        return storage_peer_binding(sd, setup)
    foreign = dict.fromkeys(sd.config.directors, "a Director of this Storage Daemon")
    foreign[sd.name] = "this Storage Daemon"
    foreign.pop(setup.client, None)
    return PeerBinding(
        role="File Daemon",
        expected=setup.client,
        allowed=tuple(sd.own.tls_allowed_cn),
        foreign=foreign,
    )


def storage_peer_binding(sd: StorageDaemon, setup: SdJobSetup) -> PeerBinding:
    """The other Storage Daemon of a remote copy (the reading SD dialing a listening job, or the
    writing SD a replicating job dials). The Director does not tell this SD its name: it may carry
    any name but those this SD knows to be other daemons (its Directors, the job's client); with
    TLS Allowed CN, also one of those names."""
    foreign = dict.fromkeys(sd.config.directors, "a Director of this Storage Daemon")
    if setup.client:
        foreign[setup.client] = "the job's client (a File Daemon)"
    return PeerBinding(role="Storage Daemon", allowed=tuple(sd.own.tls_allowed_cn), foreign=foreign)


def _current_wait(sd: StorageDaemon, job: str) -> Wait | None:
    return next((wait for name, wait in sd.registry.reservations.waiting() if name == job), None)


def _label(sd: StorageDaemon, msg: SdLabel) -> Message:
    device = sd.registry.devices.get(msg.device)
    if device is None:
        return ErrorReply(
            code=Code.SD_NO_SUCH_DEVICE,
            text=f"device {msg.device!r} is not configured on this Storage Daemon",
        )
    if device.media_type != msg.media_type:
        return ErrorReply(
            code=Code.SD_MEDIA_TYPE_MISMATCH,
            text=f"media type mismatch: device {device.name!r} has {device.media_type!r}",
        )
    # The message decoder already holds volume names to Bareos's rule; the path is checked again here:
    # a volume file is always directly inside the device's Archive Device directory (#13).
    problem = name_problem(msg.volume_name, volume=True)
    path = device.archive / msg.volume_name
    if problem is not None or path.resolve().parent != device.archive.resolve():
        return ErrorReply(
            code=3915,
            text=f"refusing volume name {msg.volume_name!r}: "
            f"{problem or 'it resolves outside the Archive Device'}",
        )
    label = vol.VolumeLabel(
        volume_name=msg.volume_name,
        pool_name=msg.pool_name,
        pool_type=msg.pool_type,
        media_type=msg.media_type,
        label_time=time.time(),
        label_program="strongroom-sd",
    )
    try:
        vol.label_volume(path, label)
    except vol.VolumeError as exc:
        return ErrorReply(code=Code.SD_LABEL_FAILED, text=str(exc))
    return Ok(
        code=Code.SD_OK,
        text=f'3000 OK label. VolBytes=0 Volume="{msg.volume_name}" Device={device.name}',
    )


def _cancel(sd: StorageDaemon, name: str) -> Message:
    job = sd.registry.jobs.get(name)
    if job is None:
        return ErrorReply(code=Code.SD_NO_SUCH_JOB, text=f"Job {name} not found")
    job.canceled.set()
    return Ok(code=Code.SD_OK, text=f"Job {name} marked to be canceled")


async def guarded(
    job: SdJob, work: Coroutine[Any, Any, None], log: Any, peer: str = "File Daemon"
) -> None:
    """Run a job's data work; whatever happens, the job ends with a status and a reason."""
    status, text = "E", ""
    try:
        await work
        status = "T"
    except SdJobError as exc:
        status, text = _stopped(job, str(exc))
    except (vol.VolumeError, OSError) as exc:
        status, text = "E", f"volume error: {exc}"
    except (NetError, ProtocolError) as exc:
        status, text = _stopped(job, f"{peer} connection failed: {exc}")
    finally:
        if text:
            log.warning("job_data_failed", job=job.name, reason=text)
            with contextlib.suppress(NetError):
                await job.message("error", text)
        job.finish(status, text)


def _stopped(job: SdJob, text: str) -> tuple[str, str]:
    """How a job that stopped early ends: A when it was canceled, E when its Director went away
    (or ended it) or anything else failed."""
    if job.abandoned:
        return "E", f"{job.abandoned}; {text}"
    return ("A" if job.canceled.is_set() else "E"), text


async def _own(
    sd: StorageDaemon, job: SdJob, conn: Connection, log: Any, work: Coroutine[Any, Any, None]
) -> None:
    """Run work that needs no data connection from outside (local copy, replicate) and report the end."""
    reader = asyncio.create_task(_read_director(job, conn, log))
    try:
        job.data_attached.set()
        await guarded(job, work, log, peer="Storage Daemon")
        end = job.end
        assert end is not None
        with contextlib.suppress(NetError):
            await conn.send(end)
        log.info("job_ended", job=job.name, status=end.status, files=end.files, bytes=end.bytes)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        sd.registry.release(job)


async def _replicate(sd: StorageDaemon, job: SdJob, msg: SdReplicate, log: Any) -> None:
    """Connect to the writing SD as the job (its one-time key) and stream the records."""
    own = sd.own
    ssl_context = client_ssl_context(own, own) if msg.tls else None
    try:
        peer = await dial(msg.address, msg.port, ssl_context, sd.limits(), bulk_data=True)
    except NetError as exc:
        raise SdJobError(
            f"cannot reach the writing Storage Daemon at {msg.address}:{msg.port}: {exc.step}: {exc}"
        ) from exc
    try:
        binding = dataclasses.replace(storage_peer_binding(sd, job.setup), verified=msg.peer_names)
        problem = binding.check(peer.ssl_object)
        if problem is not None:
            raise SdJobError(
                f"Job {job.name}: refusing the writing Storage Daemon at "
                f"{msg.address}:{msg.port}: {problem}"
            )
        await authenticate_initiator(
            peer, Hello(role="job", name=msg.job, version=VERSION), msg.key
        )
        await run_replicate(job, peer, log)
    finally:
        await peer.close(terminate=True)


async def _run(sd: StorageDaemon, job: SdJob, conn: Connection, log: Any) -> None:
    """Own the control connection for the job: wait for the FD, relay Director replies, report the end."""
    await job.set_status("S" if job.setup.listen else "F")
    reader = asyncio.create_task(_read_director(job, conn, log))
    try:
        attach = asyncio.ensure_future(job.data_attached.wait())
        canceled = asyncio.ensure_future(job.canceled.wait())
        try:
            async with asyncio.timeout(sd.client_connect_wait):
                await asyncio.wait({attach, canceled}, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            job.finish("E", f"File Daemon did not connect within {sd.client_connect_wait:g} s")
        finally:
            attach.cancel()
            canceled.cancel()
        if job.canceled.is_set() and not job.data_attached.is_set():
            job.finish(*_stopped(job, "stopped before the File Daemon connected"))
        await job.finished.wait()
        end = job.end
        assert end is not None
        with contextlib.suppress(NetError):
            await conn.send(end)
        log.info("job_ended", job=job.name, status=end.status, files=end.files, bytes=end.bytes)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        sd.registry.release(job)


async def _read_director(job: SdJob, conn: Connection, log: Any) -> None:
    """Director → SD traffic during a job: volume assignments and cancel."""
    talk = Conversation(f"Storage Daemon <- Director (job {job.name})", SD_FROM_DIRECTOR)
    try:
        while not job.finished.is_set():
            event = await conn.recv()
            if isinstance(event, Message):
                talk.receive(event)  # anything else from the Director mid-job is a protocol error
            match event:
                case VolumeAssignment():
                    await job.volume_replies.put(event)
                case CancelJob():
                    job.canceled.set()
                case ErrorReply():
                    log.warning("director_error", job=job.name, text=event.text)
                    _abandon(job, f"the Director ended the job: {event.code} {event.text}")
                case Signal.TERMINATE:
                    _abandon(job, "the Director ended the job")
                    return
    except (NetError, ProtocolError) as exc:
        log.warning("director_connection_lost", job=job.name, reason=str(exc))
        _abandon(job, f"Director connection lost: {exc}")


def _abandon(job: SdJob, why: str) -> None:
    """The Director went away or ended the job: stop it; it ends E (a cancel asked for first stays A)."""
    if not job.canceled.is_set():
        job.abandoned = why
    job.canceled.set()
