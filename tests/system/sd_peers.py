"""A hand-driven Director and File Daemon (or reading Storage Daemon) against a real Storage Daemon:
real TLS with the installation's certificates, real authentication, messages and record batches
of the test's choosing."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from common.auth import authenticate_initiator
from common.net import Connection, Limits, dial
from common.tls import client_context
from protocol.frames import Signal
from protocol.jobs import JobEnd, Ok, SdJobAccepted, SdJobSetup, SdRun, VolumeAssignment
from protocol.messages import Hello, Message
from tests.system.conftest import Installation

LIMITS = Limits(connect_timeout=5.0, auth_timeout=10.0, tls_handshake_timeout=10.0)
JOB_END_WAIT = 60.0
_serial = itertools.count(1)


@dataclass
class SdJobHandle:
    """A job the test, as its Director, set up and started on the Storage Daemon."""

    director: Connection
    job: str
    key: str
    volume: str
    told: list[Message] = field(default_factory=list)

    async def end(self) -> JobEnd:
        """Every message the SD sends the Director until the job's JobEnd (kept in `told`)."""
        async with asyncio.timeout(JOB_END_WAIT):
            while True:
                event = await self.director.recv()
                if isinstance(event, Signal):
                    continue
                self.told.append(event)
                if isinstance(event, JobEnd):
                    return event


async def connect(inst: Installation, certificate: str, hello: Hello, secret: str) -> Connection:
    """Dial the installation's Storage Daemon presenting `certificate` (a name in its PKI) and
    authenticate as `hello`; the connection is closed again on failure."""
    pki = inst.layout.pki
    ctx = client_context(pki / f"{certificate}.pem", pki / f"{certificate}.key", pki / "ca.pem")
    conn = await dial(inst.layout.address, inst.layout.sd_port, ctx, LIMITS)
    try:
        await authenticate_initiator(conn, hello, secret)
    except BaseException:
        await conn.close()
        raise
    return conn


@asynccontextmanager
async def sd_job(
    inst: Installation,
    *,
    listen: bool = False,
    append: bool = True,
    peer_names: tuple[str, ...] = (),
) -> AsyncIterator[SdJobHandle]:
    """Set up an append job on the SD as its Director would (test-dir, its certificate and
    password), on a fresh volume the SD labels, and run it; or (append=False) a read job with an
    empty bootstrap, not yet run."""
    n = next(_serial)
    director = await connect(
        inst,
        inst.layout.director,
        Hello(role="director", name=inst.layout.director, version="1"),
        inst.layout.sd_password,
    )
    try:
        job = f"hostile.2026-01-01_00.00.{n:02d}_{n:02d}"
        volume = f"Hostile-{n:04d}"
        await director.send(
            SdJobSetup(
                job_id=9000 + n,
                job=job,
                job_name="hostile",
                client=inst.layout.client,
                fileset="fs",
                job_type="B",
                level="F",
                device="FileStorage",
                media_type="File",
                append=append,
                volume=VolumeAssignment(
                    volume_name=volume,
                    media_id=n,
                    pool_name="Full",
                    pool_type="Backup",
                    media_type="File",
                    needs_label=True,
                )
                if append
                else None,
                listen=listen,
            )
        )
        accepted = await director.recv_message(timeout=30)
        assert isinstance(accepted, SdJobAccepted), accepted
        if append:
            await director.send(SdRun(peer_names=peer_names))
            ok = await director.recv_message(timeout=30)
            assert isinstance(ok, Ok), ok
        yield SdJobHandle(director, job, accepted.key, volume)
    finally:
        await director.close(terminate=True)


async def data_session(inst: Installation, handle: SdJobHandle, certificate: str) -> Connection:
    """The job's data connection, as the File Daemon (or reading SD) opens it: the one-time key."""
    return await connect(
        inst, certificate, Hello(role="job", name=handle.job, version="1"), handle.key
    )
