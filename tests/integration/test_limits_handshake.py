"""Limits before authentication, in-process on port 0: caps, one handshake deadline, small frames."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import structlog

from common.auth import authenticate_acceptor, authenticate_initiator
from common.net import Connection, ConnectionClosed, Limits, Listener, dial
from common.stream import GUARDED_FREE, MIN_FREE, FrameStream
from protocol.errors import FrameTooLarge
from protocol.frames import Signal, encode_frame
from protocol.messages import ConsoleCommand, Hello

TIGHT = Limits(
    frame_timeout=2.0,
    auth_timeout=5.0,
    connect_timeout=2.0,
    handshake_timeout=5.0,
    max_unauthenticated=6,
    max_unauthenticated_per_address=3,
)


@contextlib.asynccontextmanager
async def listening(
    handler: Callable[[Connection], Awaitable[None]], limits: Limits
) -> AsyncIterator[Listener]:
    listener = Listener(
        addresses=[("127.0.0.1", 0)],
        handler=handler,
        ssl_context=None,
        limits=limits,
        log=structlog.get_logger(),
    )
    listener.bind()
    stop = asyncio.Event()
    task = asyncio.create_task(listener.serve(stop))
    try:
        yield listener
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def _port(listener: Listener) -> int:
    return int(listener.bound[0].rsplit(":", 1)[1])


async def _authenticating(conn: Connection) -> None:
    await authenticate_acceptor(
        conn, lambda hello: "pw" if hello.name == "ok" else None, failure_delay=0
    )
    await conn.send(ConsoleCommand(line="welcome"))
    with contextlib.suppress(ConnectionClosed):
        await conn.recv()


async def _idle(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    await asyncio.get_running_loop().sock_sendall(sock, b"\x00")  # past the first-byte peek
    return sock


async def _wait_until(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not predicate():
            await asyncio.sleep(0.01)


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


async def test_per_address_cap_drops_the_oldest_and_a_prompt_caller_still_gets_in() -> None:
    async with listening(_authenticating, TIGHT) as listener:
        idle = [await _idle(_port(listener)) for _ in range(5)]
        await _wait_until(lambda: _closed(idle[0]) and _closed(idle[1]))
        assert listener.unauthenticated <= 3
        assert not _closed(idle[4])
        conn = await dial("127.0.0.1", _port(listener), None, TIGHT)
        await authenticate_initiator(conn, Hello(role="console", name="ok", version="1"), "pw")
        assert await conn.recv_message(timeout=2) == ConsoleCommand(line="welcome")
        assert listener.unauthenticated <= 3  # the authenticated caller is no longer counted
        await conn.close()
        for sock in idle:
            sock.close()


async def test_global_cap_holds_across_addresses() -> None:
    limits = Limits(
        handshake_timeout=5.0, max_unauthenticated=2, max_unauthenticated_per_address=100
    )
    async with listening(_authenticating, limits) as listener:
        idle = [await _idle(_port(listener)) for _ in range(4)]
        await _wait_until(lambda: _closed(idle[0]) and _closed(idle[1]))
        assert listener.unauthenticated == 2
        assert listener.stats.refused >= 2
        for sock in idle:
            sock.close()


async def test_one_deadline_covers_the_whole_handshake_even_for_a_trickling_peer() -> None:
    limits = Limits(frame_timeout=30.0, auth_timeout=30.0, handshake_timeout=0.6)
    async with listening(_authenticating, limits) as listener:
        sock = await _idle(_port(listener))
        loop = asyncio.get_running_loop()
        start = loop.time()
        # One byte every 0.1 s: each read is quick, the handshake never completes.
        with contextlib.suppress(OSError):
            for byte in encode_frame(b"\x81\xa1t\xa5hello" + b"\x00" * 200)[1:]:
                await loop.sock_sendall(sock, bytes([byte]))
                await asyncio.sleep(0.1)
                if _closed(sock):
                    break
        await _wait_until(lambda: _closed(sock), 3.0)
        assert loop.time() - start < 2.0
        sock.close()


async def test_frames_before_authentication_are_small() -> None:
    limits = Limits(handshake_timeout=5.0)
    errors: list[BaseException] = []

    async def handler(conn: Connection) -> None:
        try:
            await conn.recv()
        except FrameTooLarge as exc:
            errors.append(exc)

    async with listening(handler, limits) as listener:
        conn = await dial("127.0.0.1", _port(listener), None, limits)
        await conn.send_raw(b"\x00" * (limits.unauthenticated_frame_size + 1))
        await _wait_until(lambda: bool(errors))
        assert "exceeds the limit of 16384 bytes" in str(errors[0])
        await conn.close()


async def test_an_authenticated_peer_gets_full_frames_and_buffers() -> None:
    got: list[int] = []

    async def handler(conn: Connection) -> None:
        await authenticate_acceptor(conn, lambda hello: "pw", failure_delay=0)
        event = await conn.recv_event(timeout=5)
        assert not isinstance(event, Signal)
        got.append(len(event))

    async with listening(handler, TIGHT) as listener:
        conn = await dial("127.0.0.1", _port(listener), None, TIGHT)
        await authenticate_initiator(conn, Hello(role="console", name="x", version="1"), "pw")
        await conn.send_raw(b"\x01" * 500_000)
        await _wait_until(lambda: bool(got))
        assert got == [500_000]
        await conn.close()


def test_a_guarded_stream_holds_a_few_kib_until_opened_up() -> None:
    stream = FrameStream(guarded=True)
    assert len(stream._buf) <= 4 * GUARDED_FREE
    assert (
        len(stream.get_buffer(256 * 1024)) <= 4 * GUARDED_FREE
    )  # a size hint is not a reason to grow
    stream.open_up()
    assert len(stream.get_buffer(256 * 1024)) >= MIN_FREE


@pytest.mark.parametrize("count", [300])
async def test_many_idle_connections_stay_bounded(count: int) -> None:
    limits = Limits(
        handshake_timeout=5.0, max_unauthenticated=50, max_unauthenticated_per_address=50
    )
    async with listening(_authenticating, limits) as listener:
        idle = [await _idle(_port(listener)) for _ in range(count)]
        await _wait_until(lambda: listener.stats.total >= count)
        assert listener.unauthenticated <= 50
        conn = await dial("127.0.0.1", _port(listener), None, limits)
        async with asyncio.timeout(2):
            await authenticate_initiator(conn, Hello(role="console", name="ok", version="1"), "pw")
            assert await conn.recv_message() == ConsoleCommand(line="welcome")
        await conn.close()
        for sock in idle:
            sock.close()
