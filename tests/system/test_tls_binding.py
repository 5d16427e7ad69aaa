"""Certificates bound on the data hops (#13), against the real Storage Daemon: a File Daemon's data
session must present the job's client's certificate, and neither side of a remote copy may present
a certificate carrying another daemon's name. Every certificate here is signed by the
installation's own CA and every peer knows the job's one-time key: the name alone is refused, and
the refusal says why, to the peer and in the job's end."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from common.bulk import DATA_PREAMBLE, read_preamble
from common.pki import issue_certificate, load_ca
from common.tls import server_context
from protocol.frames import Signal
from protocol.jobs import AppendDone, AppendOpen, JobMessage, Ok, SdReplicate
from protocol.messages import ErrorReply
from tests.system.conftest import Installation
from tests.system.sd_peers import SdJobHandle, data_session, sd_job

OTHER_CLIENT = "other-fd"  # a CA-signed certificate of a client this job is not for
OTHER_SD = "other-sd"  # a CA-signed certificate of a Storage Daemon this copy is not between


@pytest.fixture(scope="module")
def pki(installation: Installation) -> Installation:
    pki = installation.layout.pki
    issue_certificate(load_ca(pki), pki, OTHER_CLIENT, hostnames=["localhost", "127.0.0.1"])
    issue_certificate(load_ca(pki), pki, OTHER_SD, hostnames=["localhost", "127.0.0.1"])
    return installation


async def _refused(inst: Installation, job: SdJobHandle, certificate: str) -> str:
    """Open the job's data session with `certificate`; the SD's answer must be a refusal."""
    data = await data_session(inst, job, certificate)
    try:
        reply = await data.recv_message(timeout=30)
    finally:
        await data.close(terminate=True)
    assert isinstance(reply, ErrorReply), reply
    return reply.text


async def _accepted(inst: Installation, job: SdJobHandle, certificate: str) -> None:
    data = await data_session(inst, job, certificate)
    try:
        await data.send(AppendOpen())
        assert isinstance(await data.recv_message(timeout=30), Ok)
        await data.send_signal(Signal.EOD)
        assert isinstance(await data.recv_message(timeout=30), AppendDone)
    finally:
        await data.close(terminate=True)


async def _ends_with(job: SdJobHandle, reason: str) -> None:
    end = await job.end()
    assert end.status == "E", end
    assert reason in end.text and f"Job {job.job}" in end.text, end.text
    errors = [m.text for m in job.told if isinstance(m, JobMessage) and m.level == "error"]
    assert any(reason in text for text in errors), errors


FD_HOP = [
    ("test-dir", "test-dir is a Director of this Storage Daemon"),
    ("test-sd", "test-sd is this Storage Daemon"),
    (OTHER_CLIENT, f"{OTHER_CLIENT}, not for 'test-fd' (the job's client)"),
]


@pytest.mark.parametrize(("certificate", "reason"), FD_HOP, ids=[c for c, _r in FD_HOP])
async def test_fd_to_sd_refuses_another_daemons_certificate(
    pki: Installation, certificate: str, reason: str
) -> None:
    async with sd_job(pki) as job:
        text = await _refused(pki, job, certificate)
        assert "refusing the File Daemon data session" in text and reason in text, text
        await _ends_with(job, reason)


async def test_fd_to_sd_takes_the_clients_own_certificate(pki: Installation) -> None:
    async with sd_job(pki) as job:
        await _accepted(pki, job, pki.layout.client)
        end = await job.end()
    assert end.status == "T", end


SD_HOP = [
    ("test-fd", "test-fd is the job's client (a File Daemon)"),
    ("test-dir", "test-dir is a Director of this Storage Daemon"),
]


@pytest.mark.parametrize(("certificate", "reason"), SD_HOP, ids=[c for c, _r in SD_HOP])
async def test_the_writing_sd_refuses_a_reading_sd_with_another_daemons_certificate(
    pki: Installation, certificate: str, reason: str
) -> None:
    async with sd_job(pki, listen=True) as job:
        text = await _refused(pki, job, certificate)
        assert "refusing the Storage Daemon data session" in text and reason in text, text
        await _ends_with(job, reason)


async def test_the_writing_sd_takes_a_storage_daemons_certificate(pki: Installation) -> None:
    async with sd_job(pki, listen=True) as job:
        await _accepted(pki, job, pki.layout.storage)
        end = await job.end()
    assert end.status == "T", end


@asynccontextmanager
async def _posing_sd(inst: Installation, certificate: str) -> AsyncIterator[int]:
    """A TLS listener that presents `certificate` as the writing Storage Daemon; its port.

    A Storage Daemon opens a copy's data connection as a bulk one: a preamble in clear, then TLS.
    The preamble is read from the bare socket, exactly its length, as the real SD does: a stream
    reader could buffer the ClientHello behind it, which the TLS layer then never sees."""
    pki = inst.layout.pki
    ctx = server_context(pki / f"{certificate}.pem", pki / f"{certificate}.key", pki / "ca.pem")
    loop = asyncio.get_running_loop()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    held: set[asyncio.Task[None]] = set()

    async def hold(client: socket.socket) -> None:
        # Read as the SD reads it: exactly the preamble's bytes, nothing buffered behind them.
        assert await read_preamble(client) == DATA_PREAMBLE
        reader = asyncio.StreamReader()
        transport, _protocol = await loop.connect_accepted_socket(
            lambda: asyncio.StreamReaderProtocol(reader), client, ssl=ctx
        )
        await reader.read()  # until the Storage Daemon hangs up
        transport.close()

    async def serve() -> None:
        while True:
            client, _address = await loop.sock_accept(listener)
            task = asyncio.ensure_future(hold(client))
            held.add(task)
            task.add_done_callback(held.discard)

    server = asyncio.ensure_future(serve())
    try:
        yield listener.getsockname()[1]
    finally:
        server.cancel()
        for task in (server, *held):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        listener.close()


async def test_the_reading_sd_refuses_a_writing_sd_with_a_clients_certificate(
    pki: Installation,
) -> None:
    async with _posing_sd(pki, pki.layout.client) as port, sd_job(pki, append=False) as job:
        await job.director.send(
            SdReplicate(address="127.0.0.1", port=port, job="copy.1", key="any", tls=True)
        )
        assert isinstance(await job.director.recv_message(timeout=30), Ok)
        reason = "test-fd is the job's client (a File Daemon)"
        await _ends_with(job, reason)
        end = [m for m in job.told if not isinstance(m, JobMessage)][-1]
        assert f"refusing the writing Storage Daemon at 127.0.0.1:{port}" in str(end)


async def test_the_writing_sd_holds_the_reading_sd_to_the_certificate_the_director_verified(
    pki: Installation,
) -> None:
    """With the names the Director saw on the reading SD (SdRun.peer_names), another CA-signed
    Storage Daemon certificate is refused and the verified one is taken."""
    verified = (pki.layout.storage,)
    async with sd_job(pki, listen=True, peer_names=verified) as job:
        text = await _refused(pki, job, OTHER_SD)
        reason = f"not the one the Director verified for it ({pki.layout.storage})"
        assert "refusing the Storage Daemon data session" in text and reason in text, text
        await _ends_with(job, reason)
    async with sd_job(pki, listen=True, peer_names=verified) as job:
        await _accepted(pki, job, pki.layout.storage)
        assert (await job.end()).status == "T"


async def test_the_reading_sd_holds_the_writing_sd_to_the_certificate_the_director_verified(
    pki: Installation,
) -> None:
    async with _posing_sd(pki, OTHER_SD) as port, sd_job(pki, append=False) as job:
        await job.director.send(
            SdReplicate(
                address="127.0.0.1",
                port=port,
                job="copy.1",
                key="any",
                tls=True,
                peer_names=(pki.layout.storage,),
            )
        )
        assert isinstance(await job.director.recv_message(timeout=30), Ok)
        await _ends_with(job, f"not the one the Director verified for it ({pki.layout.storage})")
