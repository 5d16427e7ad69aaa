"""Peer liveness in-process on port 0: TCP keepalive and TCP_USER_TIMEOUT on every socket, heartbeats
from authentication on, a silent peer found dead within its heartbeat window, a long silent phase
with heartbeats left alone, and heartbeats that never cut into a busy sender's frames."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import structlog

from common import bulk
from common.auth import authenticate_acceptor, authenticate_initiator
from common.link import (
    KEEPALIVE_IDLE,
    KEEPALIVE_INTERVAL,
    KEEPALIVE_PROBES,
    TCP_USER_TIMEOUT,
    Liveness,
)
from common.net import Connection, Limits, Listener, PeerTimeout, dial
from protocol.frames import Signal
from protocol.messages import ConsoleCommand, Hello

SECRET = "s3cret"
HELLO = Hello(role="console", name="admin", version="t")
BEAT = Limits(
    frame_timeout=2.0,
    auth_timeout=2.0,
    connect_timeout=2.0,
    heartbeat_interval=0.05,
    heartbeat_grace=0.2,
)
WINDOW = 2 * BEAT.heartbeat_interval + BEAT.heartbeat_grace
QUIET = Limits(frame_timeout=2.0, auth_timeout=2.0, connect_timeout=2.0, heartbeat_interval=0.0)

Handler = Callable[[Connection], Awaitable[None]]


async def _listen(
    handler: Handler, limits: Limits, *, accept_bulk: bool = False
) -> AsyncIterator[int]:
    listener = Listener(
        addresses=[("127.0.0.1", 0)],
        handler=handler,
        ssl_context=None,
        limits=limits,
        log=structlog.get_logger(),
        accept_bulk=accept_bulk,
    )
    listener.bind()
    stop = asyncio.Event()
    task = asyncio.create_task(listener.serve(stop))
    try:
        yield int(listener.bound[0].rsplit(":", 1)[1])
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def _dial_authenticated(port: int, limits: Limits) -> Connection:
    conn = await dial("127.0.0.1", port, None, limits)
    await authenticate_initiator(conn, HELLO, SECRET)
    return conn


def _sock_of(conn: Connection) -> Any:
    """The connection's socket (a test looks under the carrier)."""
    channel = getattr(conn, "_channel", None)
    if channel is not None:
        return channel.sock
    return conn._stream.get_extra_info("socket")  # type: ignore[attr-defined]  # StreamConnection's stream


async def _first_heartbeat_sent(conn: Connection) -> None:
    """Wait until the heartbeat that announces them has left (nothing else is sent after the handshake)."""
    authenticated = conn._last_send  # a test looks under the connection
    for _ in range(200):
        if conn._last_send != authenticated:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("no heartbeat after the handshake")


def _tcp_options(sock: Any) -> dict[str, int]:
    return {
        "keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        "idle": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        "interval": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
        "probes": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
        "user_timeout_ms": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
    }


EXPECTED = {
    "keepalive": 1,
    "idle": int(KEEPALIVE_IDLE),
    "interval": int(KEEPALIVE_INTERVAL),
    "probes": KEEPALIVE_PROBES,
    "user_timeout_ms": int(TCP_USER_TIMEOUT * 1000),
}


def test_liveness_judges_only_a_peer_that_sends_heartbeats() -> None:
    off = Liveness(interval=0)
    off.heard_heartbeat()
    assert off.window() is None
    on = Liveness(interval=60, grace=10)
    assert on.window() is None  # not before the peer has shown it sends heartbeats
    on.heard_heartbeat()
    assert on.window() == 130


@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="Linux socket options")
@pytest.mark.parametrize("bulk_data", [False, True], ids=["control", "bulk"])
async def test_every_socket_has_keepalive_and_a_user_timeout(bulk_data: bool) -> None:
    accepted: list[dict[str, int]] = []

    async def handler(conn: Connection) -> None:
        accepted.append(_tcp_options(_sock_of(conn)))
        await conn.recv()

    async for port in _listen(handler, QUIET, accept_bulk=bulk_data):
        conn = await dial("127.0.0.1", port, None, QUIET, bulk_data=bulk_data)
        try:
            assert _tcp_options(_sock_of(conn)) == EXPECTED
            await conn.send(ConsoleCommand(line="x"))
            for _ in range(100):
                if accepted:
                    break
                await asyncio.sleep(0.02)
        finally:
            await conn.close()
    assert accepted == [EXPECTED]
    assert isinstance(conn, bulk.ThreadedConnection) == bulk_data


async def test_a_silent_peer_is_found_dead_within_its_heartbeat_window() -> None:
    """The peer authenticates (and so announces its heartbeats), then says nothing: a SIGSTOP."""
    outcome: list[tuple[BaseException, float]] = []

    async def handler(conn: Connection) -> None:
        await authenticate_acceptor(conn, lambda _hello: SECRET, failure_delay=0)
        started = time.monotonic()
        try:
            await conn.recv()
        except PeerTimeout as exc:
            outcome.append((exc, time.monotonic() - started))

    async for port in _listen(handler, BEAT):
        conn = await _dial_authenticated(port, BEAT)
        await _first_heartbeat_sent(conn)
        await conn.stop_heartbeats()  # frozen from here on
        for _ in range(200):
            if outcome:
                break
            await asyncio.sleep(0.02)
        await conn.close()
    ((error, took),) = outcome
    assert "not even a heartbeat" in str(error) and "peer 127.0.0.1:" in str(error)
    assert WINDOW <= took < WINDOW + 1.5


async def test_a_long_silent_phase_with_heartbeats_is_not_taken_for_death() -> None:
    got: list[object] = []

    async def handler(conn: Connection) -> None:
        await authenticate_acceptor(conn, lambda _hello: SECRET, failure_delay=0)
        got.append(await conn.recv())  # no fixed timeout: only the heartbeats decide

    async for port in _listen(handler, BEAT):
        conn = await _dial_authenticated(port, BEAT)
        await asyncio.sleep(6 * WINDOW)  # "walking a big tree": nothing but heartbeats
        await conn.send(ConsoleCommand(line="done"))
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.02)
        await conn.close()
    assert got == [ConsoleCommand(line="done")]


async def test_heartbeats_are_off_with_an_interval_of_zero() -> None:
    errors: list[BaseException] = []

    async def handler(conn: Connection) -> None:
        await authenticate_acceptor(conn, lambda _hello: SECRET, failure_delay=0)
        try:
            await conn.recv(timeout=3 * WINDOW)
        except PeerTimeout as exc:
            errors.append(exc)

    async for port in _listen(handler, QUIET):
        conn = await _dial_authenticated(port, QUIET)
        assert conn.liveness.window() is None
        for _ in range(200):
            if errors:
                break
            await asyncio.sleep(0.02)
        await conn.close()
    # Nobody sent a heartbeat and nobody judged: only the caller's own timeout ended the wait.
    assert "stalled" in str(errors[0])


async def test_heartbeats_never_cut_into_a_busy_senders_frames() -> None:
    """A sender held in its send by a reader that pauses, with heartbeats due all the time: every
    frame arrives whole and in order, and heartbeats went between them."""
    bodies = [os.urandom(200_000 + n) for n in range(60)]
    received: list[bytes] = []
    armed: list[bool] = []

    async def handler(conn: Connection) -> None:
        await authenticate_acceptor(conn, lambda _hello: SECRET, failure_delay=0)
        for n in range(len(bodies)):
            if n % 10 == 0:
                await asyncio.sleep(
                    0.3
                )  # the sender's buffers fill; its heartbeats wait for the lock
            event = await conn.recv_event()
            assert not isinstance(event, Signal)
            received.append(bytes(event))
        armed.append(conn.liveness.armed)

    limits = Limits(
        frame_timeout=2.0, auth_timeout=2.0, connect_timeout=2.0, heartbeat_interval=0.001
    )
    async for port in _listen(handler, limits):
        conn = await _dial_authenticated(port, limits)
        for n, body in enumerate(bodies):
            await conn.send_raw(body)
            if n % 7 == 0:
                await asyncio.sleep(0.01)  # idle moments: heartbeats go out between frames
        for _ in range(300):
            if armed:
                break
            await asyncio.sleep(0.02)
        await conn.close()
    assert received == bodies
    assert armed == [True]
