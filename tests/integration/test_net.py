"""The socket adapter in-process on port 0: framing over real sockets, handshakes, limits, heartbeats."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import structlog

from common.auth import authenticate_acceptor, authenticate_initiator
from common.net import (
    Connection,
    ConnectionClosed,
    Limits,
    Listener,
    PeerRefused,
    PeerTimeout,
    dial,
)
from protocol.errors import AuthenticationFailed, FrameTooLarge
from protocol.frames import Signal
from protocol.messages import Code, ConsoleCommand, Hello

FAST = Limits(frame_timeout=0.5, auth_timeout=2.0, connect_timeout=2.0)


class Harness:
    def __init__(self) -> None:
        self.received: list[Any] = []
        self.errors: list[BaseException] = []
        self.listener: Listener | None = None
        self.port = 0


async def _run_listener(
    handler: Callable[[Connection], Awaitable[None]], limits: Limits = FAST
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


async def test_messages_and_signals_cross_a_real_socket() -> None:
    seen: list[Any] = []

    async def handler(conn: Connection) -> None:
        while True:
            event = await conn.recv()
            seen.append(event)
            if event is Signal.TERMINATE:
                return

    async for listener in _run_listener(handler):
        conn = await dial("127.0.0.1", _port(listener), None, FAST)
        await conn.send(ConsoleCommand(line="status dir"))
        await conn.send_signal(Signal.HEARTBEAT)  # absorbed by the receiver
        await conn.send_signal(Signal.EOD)
        await conn.close(terminate=True)
        for _ in range(50):
            if seen and seen[-1] is Signal.TERMINATE:
                break
            await asyncio.sleep(0.02)
    assert seen == [ConsoleCommand(line="status dir"), Signal.EOD, Signal.TERMINATE]


@pytest.mark.parametrize(("client_secret", "ok"), [("s3cret", True), ("wrong", False)])
async def test_handshake_over_socket(client_secret: str, ok: bool) -> None:
    results: list[Any] = []

    async def handler(conn: Connection) -> None:
        try:
            results.append(await authenticate_acceptor(conn, lambda h: "s3cret", failure_delay=0))
        except AuthenticationFailed as exc:
            results.append(exc)

    async for listener in _run_listener(handler):
        conn = await dial("127.0.0.1", _port(listener), None, FAST)
        hello = Hello(role="console", name="admin", version="t")
        if ok:
            await authenticate_initiator(conn, hello, client_secret)
        else:
            with pytest.raises(AuthenticationFailed, match="1999"):
                await authenticate_initiator(conn, hello, client_secret)
        await conn.close()
        for _ in range(50):
            if results:
                break
            await asyncio.sleep(0.02)
    if ok:
        assert results == [hello]
    else:
        assert isinstance(results[0], AuthenticationFailed)
        assert "wrong password" in results[0].message


async def test_error_reply_during_handshake_is_a_clear_refusal() -> None:
    from protocol.messages import ErrorReply

    async def handler(conn: Connection) -> None:
        await conn.recv()
        await conn.send(ErrorReply(code=Code.TLS_REQUIRED, text="TLS is required"))

    async for listener in _run_listener(handler):
        conn = await dial("127.0.0.1", _port(listener), None, FAST)
        with pytest.raises(PeerRefused) as info:
            await authenticate_initiator(conn, Hello(role="console", name="a", version="t"), "x")
        assert info.value.step == "tls"
        await conn.close()


async def test_oversized_header_is_rejected_before_reading_the_body() -> None:
    errors: list[BaseException] = []

    async def handler(conn: Connection) -> None:
        try:
            await conn.recv()
        except FrameTooLarge as exc:
            errors.append(exc)
            raise

    async for listener in _run_listener(handler):
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(listener))
        writer.write(struct.pack(">i", 500_000_000))
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the daemon
        writer.close()
        await writer.wait_closed()
    assert isinstance(errors[0], FrameTooLarge)
    assert errors[0].length == 500_000_000


async def test_stalled_frame_body_times_out() -> None:
    errors: list[BaseException] = []

    async def handler(conn: Connection) -> None:
        try:
            await conn.recv()
        except PeerTimeout as exc:
            errors.append(exc)

    async for listener in _run_listener(handler):
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(listener))
        writer.write(struct.pack(">i", 100) + b"only part of it")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        await writer.wait_closed()
    assert "stalled" in str(errors[0])


async def test_heartbeats_flow_while_idle() -> None:
    got: list[bytes] = []

    async def handler(conn: Connection) -> None:
        async with conn.heartbeats(0.05):
            await asyncio.sleep(0.3)

    async for listener in _run_listener(handler):
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(listener))
        writer.write(struct.pack(">i", Signal.HEARTBEAT))  # the initiator always speaks first
        data = await asyncio.wait_for(reader.read(), 5)
        got.append(data)
        writer.close()
        await writer.wait_closed()
    beats = len(got[0]) // 4
    assert beats >= 3
    assert got[0] == struct.pack(">i", Signal.HEARTBEAT) * beats


async def test_peer_closing_is_connection_closed() -> None:
    async def handler(conn: Connection) -> None:
        await conn.close()

    async for listener in _run_listener(handler):
        conn = await dial("127.0.0.1", _port(listener), None, FAST)
        await conn.send_signal(Signal.HEARTBEAT)  # the initiator always speaks first
        with pytest.raises(ConnectionClosed):
            await conn.recv(timeout=5)
        await conn.close()


async def test_dial_reports_the_failing_step() -> None:
    from common.net import NetError

    with pytest.raises(NetError) as info:
        await dial("no-such-host.invalid", 9, None, FAST)
    assert info.value.step == "dns"
    async for listener in _run_listener(lambda conn: asyncio.sleep(0)):
        port = _port(listener)
    with pytest.raises(NetError) as info:
        await dial("127.0.0.1", port, None, FAST)
    assert info.value.step == "tcp"
