"""The Director's control connections to a job's Storage and File Daemons."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from common.net import Connection, NetError
from common.tls import peer_names
from director import peers
from director.jobs import status as st
from director.jobs.admission import WaitReason
from director.jobs.errors import JobCanceled, JobError
from protocol.errors import ProtocolError
from protocol.jobs import CancelJob, SdJobAccepted, SdJobSetup, SdJobWaiting
from protocol.messages import ErrorReply, Message

if TYPE_CHECKING:
    from director.config import ClientResource, StorageResource
    from director.jobs.control import JobControl
    from director.jobs.services import Dialer

M = TypeVar("M", bound=Message)
REPLY_TIMEOUT = 120.0


async def connect(svc: Dialer, kind: str, resource: ClientResource | StorageResource) -> Connection:
    """Dial a File or Storage Daemon for a job; failures name the daemon and the step."""
    try:
        return await peers.dial(svc, kind, resource)
    except peers.PeerError as exc:
        raise JobError(str(exc)) from exc


async def request(
    conn: Connection,
    msg: Message,
    expect: type[M],
    what: str,
    timeout: float = REPLY_TIMEOUT,
    *,
    on_wait: Callable[[SdJobWaiting], object] | None = None,
    canceled: asyncio.Event | None = None,
) -> M:
    """Send a command and wait for its typed reply; an ErrorReply becomes a JobError.

    A Storage Daemon answers a job setup with SdJobWaiting while no device can take the job (again
    at least every two minutes: `timeout` runs from the last message): `on_wait` hears each one and
    the wait goes on, for as long as it takes. Once `canceled` is set, the Storage Daemon is told
    and the wait ends with JobCanceled."""
    try:
        await conn.send(msg)
        while True:
            reply = await _recv_unless(conn, timeout, canceled)
            if reply is None:
                with contextlib.suppress(NetError, ProtocolError):
                    await conn.send(CancelJob(job=getattr(msg, "job", "")))
                raise JobCanceled()
            if not isinstance(reply, SdJobWaiting):
                break
            if on_wait is not None:
                on_wait(reply)
    except (NetError, ProtocolError) as exc:
        raise JobError(f"{what}: connection to {conn.peer} failed: {exc}") from exc
    if isinstance(reply, ErrorReply):
        raise JobError(f"{what}: {reply.code} {reply.text}")
    if not isinstance(reply, expect):
        raise JobError(f"{what}: unexpected {reply.TYPE!r} reply")
    return reply


async def _recv_unless(
    conn: Connection, timeout: float, canceled: asyncio.Event | None
) -> Message | None:
    """The next message, or None when `canceled` is set first."""
    if canceled is None:
        return await conn.recv_message(timeout=timeout)
    receiving = asyncio.ensure_future(conn.recv_message(timeout=timeout))
    cancel = asyncio.ensure_future(canceled.wait())
    try:
        await asyncio.wait({receiving, cancel}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        cancel.cancel()
        if not receiving.done():
            receiving.cancel()  # and let it finish: a second reader of the connection would lose frames
            with contextlib.suppress(asyncio.CancelledError, NetError, ProtocolError):
                await receiving
    return receiving.result() if not receiving.cancelled() else None


def sd_certificate_name(storage: StorageResource, sd: Connection) -> str:
    """The name a File Daemon must find in the Storage Daemon's certificate (FdStorage.name): the
    Storage resource's one TLS Allowed CN (the quickstart sets the SD's own name there), else a
    name of the certificate the Director itself verified on its connection `sd` to that SD (the
    resource's name when the certificate carries it), so the FD talks to the SD the Director
    talked to. Plain TCP: no name, nothing to check."""
    allowed = tuple(storage.tls_allowed_cn or ())
    if len(allowed) == 1:
        return allowed[0]
    names = verified_names(sd)
    if not names:
        return ""
    return storage.name if storage.name in names else names[0]


def verified_names(conn: Connection) -> tuple[str, ...]:
    """The names (sorted) in the certificate a daemon showed the Director on `conn`, as the
    Director verified it: what a File Daemon or the other Storage Daemon of a copy must see again
    (#13). Plain TCP: none, nothing to check."""
    return tuple(sorted(peer_names(conn.ssl_object))) if conn.tls else ()


def storage_wait(name: str) -> WaitReason:
    """Waiting for a Storage Daemon to answer: connecting, setting the job up, or listening."""
    return WaitReason(st.WAIT_SD, "waiting_for_storage_daemon", f"storage={name}")


def client_wait(name: str) -> WaitReason:
    """Waiting for a File Daemon: connecting, setting the job up, reaching its Storage Daemon."""
    return WaitReason(st.WAIT_FD, "waiting_for_file_daemon", f"client={name}")


def device_wait(
    jcr: JobControl, storage: str, joblog: Callable[[str, str], None]
) -> Callable[[SdJobWaiting], None]:
    """Show a job's device wait (`waiting_for_device device=NAME`) as its wait reason and in its
    log (`joblog(level, text)`)."""

    def on_wait(wait: SdJobWaiting) -> None:
        reason = WaitReason(st.WAIT_SD, wait.reason, wait.resource)
        if reason != jcr.wait:
            joblog("info", f"{storage}: {wait.text}; the job waits for the device")
        jcr.set_wait(reason)

    return on_wait


async def set_up_sd_job(
    conn: Connection,
    jcr: JobControl,
    setup: SdJobSetup,
    *,
    storage: str,
    joblog: Callable[[str, str], None],
    what: str,
) -> SdJobAccepted:
    """Create a job on a Storage Daemon: while no device can take it, the job waits with the SD's
    reason (`device_wait`) and a cancel withdraws it; accepted, it waits no more."""
    accepted = await request(
        conn,
        setup,
        SdJobAccepted,
        what,
        canceled=jcr.canceled,
        on_wait=device_wait(jcr, storage, joblog),
    )
    jcr.wait = None
    return accepted


async def serve_job(
    jcr: JobControl, conns: list[Connection], readers: list[Coroutine[Any, Any, None]], what: str
) -> None:
    """Run the readers of a job's daemon connections to their end; a cancel is relayed to every daemon."""

    async def on_cancel() -> None:
        await jcr.canceled.wait()
        for conn in conns:
            with contextlib.suppress(NetError, ProtocolError):
                await conn.send(CancelJob(job=jcr.unique))

    try:
        async with asyncio.TaskGroup() as tg:
            canceler = tg.create_task(on_cancel())
            await asyncio.wait([tg.create_task(r) for r in readers])
            canceler.cancel()
    except* (NetError, ProtocolError) as group:
        if jcr.canceled.is_set():
            raise JobCanceled() from None
        raise JobError(
            f"lost a daemon connection during the {what}: {group.exceptions[0]}"
        ) from None
    except* JobError as group:
        raise group.exceptions[0] from None
