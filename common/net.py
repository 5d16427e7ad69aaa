"""The one adapter between sockets and the sans-IO protocol: connections, the listener, the dialer."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from common import bulk
from common.link import (
    TLS_RECORD_HANDSHAKE,
    Body,
    Connection,
    ConnectionClosed,
    Limits,
    NetError,
    Parts,
    PeerRefused,
    PeerTimeout,
    format_address,
    set_keepalive,
    tls_mismatch,
    tls_required_reply,
)
from common.stream import FrameStream
from common.tls import describe_ssl_error
from protocol.errors import ProtocolError
from protocol.frames import HEADER_SIZE, Signal, parse_header

__all__ = [
    "Connection",
    "ConnectionClosed",
    "Limits",
    "Listener",
    "NetError",
    "PeerRefused",
    "PeerTimeout",
    "StreamConnection",
    "dial",
]

PEEK_TIMEOUT: Final = 30.0
WRITE_BUFFER_HIGH: Final = 2 * 1024 * 1024
SHUTDOWN_TIMEOUT: Final = 2.0
SILENCE_RECHECK: Final = 0.5  # one more look at the socket before a silent peer is declared dead


class StreamConnection(Connection):
    """A framed connection over an asyncio stream (TLS or plain), run by the event loop."""

    def __init__(self, stream: FrameStream, limits: Limits, peer: str) -> None:
        super().__init__(limits, peer)
        self._stream = stream
        self._send_lock = asyncio.Lock()
        # Let a whole data batch or two sit in the transport: `drain` then returns at once and the
        # sender goes on reading while the kernel sends (the default 64 KiB mark stalls every batch).
        with contextlib.suppress(AttributeError, NotImplementedError, RuntimeError):
            stream.transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)

    @property
    def ssl_object(self) -> Any:
        return self._stream.get_extra_info("ssl_object")

    def on_authenticated(self) -> None:
        self._stream.open_up()
        super().on_authenticated()

    async def _send_frames(self, parts: Parts) -> None:
        async with self._send_lock:
            try:
                if len(parts) == 1:
                    self._stream.write(parts[0])
                else:
                    self._stream.writelines(parts)
                await self._stream.drain()
            except (ConnectionError, OSError) as exc:
                raise ConnectionClosed(f"send to {self.peer_name} failed: {exc}") from exc

    async def _read_exactly(self, n: int, timeout: float | None, what: str) -> Body:
        try:
            async with asyncio.timeout(timeout):
                return await self._stream.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            raise ConnectionClosed(
                f"connection closed by {self.peer_name}"
                if not exc.partial
                else f"connection closed by {self.peer_name} mid-{what}"
            ) from exc
        except TimeoutError as exc:
            raise PeerTimeout(f"peer stalled: no complete {what} within {timeout:g} s") from exc
        except (ConnectionError, OSError, ssl.SSLError) as exc:
            raise ConnectionClosed(f"receive from {self.peer_name} failed: {exc}") from exc

    async def _read_header(self, timeout: float | None) -> Body:
        """A frame header within the caller's timeout, or the peer's liveness window when shorter."""
        window = self.liveness.window()
        if window is None or (timeout is not None and timeout <= window):
            return await self._read_exactly(HEADER_SIZE, timeout, "frame header")
        try:
            return await self._read_exactly(HEADER_SIZE, window, "frame header")
        except PeerTimeout:
            pass
        # When this process was the one stopped (SIGSTOP, a suspended VM, a loop blocked too long),
        # its timer fires before the frames waiting in the socket are read: look once more.
        try:
            return await self._read_exactly(HEADER_SIZE, SILENCE_RECHECK, "frame header")
        except PeerTimeout as exc:
            raise PeerTimeout(
                f"{self.peer_name} sent nothing, not even a heartbeat, for {window:g} s:"
                " it stopped answering (stopped, hung, or the network is cut)"
            ) from exc

    async def recv_event(self, timeout: float | None = None) -> Body | Signal:
        while True:
            header = await self._read_header(timeout)
            announced = parse_header(bytes(header), self.frame_limit)  # bytes already: no copy
            if announced is Signal.HEARTBEAT:
                self.liveness.heard_heartbeat()
                continue
            if isinstance(announced, Signal):
                return announced
            if announced == 0:
                return b""
            return await self._read_exactly(announced, self.limits.frame_timeout, "frame body")

    async def _shutdown(self) -> None:
        self._stream.close()
        with contextlib.suppress(ConnectionError, OSError, ssl.SSLError, TimeoutError):
            async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                await self._stream.wait_closed()
                return
        # Unsent data towards a peer that stopped reading keeps a closing transport open, and a
        # send blocked in `drain` blocked with it: drop the data and wake the sender.
        with contextlib.suppress(AttributeError, OSError, RuntimeError):
            self._stream.transport.abort()


async def dial(
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    limits: Limits,
    *,
    bulk_data: bool = False,
) -> Connection:
    """Open a connection, failing with a NetError whose step names DNS, TCP or TLS.

    `bulk_data` opens a connection run by a thread of its own (common.bulk), for streams that move
    whole jobs between daemons.
    """
    if bulk_data:
        return await bulk.dial(host, port, ssl_context, limits)
    loop = asyncio.get_running_loop()
    where = format_address(host, port)
    try:
        async with asyncio.timeout(limits.connect_timeout):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, TimeoutError) as exc:
        raise NetError("dns", f"cannot resolve {host!r}: {exc}") from exc
    last: Exception | None = None
    stream: FrameStream | None = None
    for family, _type, _proto, _canon, sockaddr in infos:
        try:
            async with asyncio.timeout(limits.connect_timeout):
                _transport, stream = await loop.create_connection(
                    lambda: FrameStream(guarded=True),
                    str(sockaddr[0]),
                    int(sockaddr[1]),
                    family=family,
                )
            break
        except (OSError, TimeoutError) as exc:
            last = exc
    if stream is None:
        raise NetError("tcp", f"cannot connect to {where}: {last or 'no address'}")
    set_keepalive(stream.get_extra_info("socket"), limits)
    if ssl_context is not None:
        try:
            stream.transport = await loop.start_tls(
                stream.transport,
                stream,
                ssl_context,
                ssl_handshake_timeout=limits.tls_handshake_timeout,
            )
        except (ssl.SSLError, ConnectionError, OSError, TimeoutError) as exc:
            stream.close()
            raise NetError(
                "tls", f"TLS handshake with {where} failed: {describe_tls_failure(exc)}"
            ) from exc
    return StreamConnection(stream, limits, where)


def describe_tls_failure(exc: BaseException) -> str:
    """Operator-readable reason for a failed TLS handshake."""
    return describe_ssl_error(exc)


Handler = Callable[[Connection], Awaitable[None]]
Drain = Callable[[Mapping[Connection, "asyncio.Task[None]"]], Awaitable[None]]


@dataclass
class ListenerStats:
    """Connection counts reported by `status`."""

    active: int = 0
    total: int = 0
    refused: int = 0


@dataclass
class Listener:
    """Accepts connections on several addresses; TLS is detected by peeking at the first byte."""

    addresses: list[tuple[str, int]]
    handler: Handler
    ssl_context: ssl.SSLContext | None
    limits: Limits
    log: Any
    refusal_text: str = "TLS is required"
    accept_bulk: bool = False  # bulk data connections (common.bulk): Storage Daemons only
    stats: ListenerStats = field(default_factory=ListenerStats)
    stop_requested: bool = False
    tls_optional: bool = False  # TLS Require = no: plain TCP callers are served too
    bound: list[str] = field(default_factory=list)
    _sockets: list[socket.socket] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _connections: dict[Connection, asyncio.Task[None]] = field(default_factory=dict)
    # Connections not yet authenticated, oldest first, with their source host (see `_admit`).
    _unauthenticated: dict[asyncio.Task[None], str] = field(default_factory=dict)

    def bind(self) -> None:
        """Create every listening socket (raises OSError naming the address on failure)."""
        for host, port in self.addresses:
            infos = socket.getaddrinfo(
                host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
            family, _t, _p, _c, sockaddr = infos[0]
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(sockaddr)
            except OSError as exc:
                sock.close()
                raise OSError(
                    exc.errno, f"cannot bind {format_address(host, port)}: {exc.strerror}"
                ) from exc
            sock.listen(128)
            sock.setblocking(False)
            self._sockets.append(sock)
            bound_host, bound_port = sock.getsockname()[:2]
            self.bound.append(format_address(bound_host, bound_port))

    async def serve(self, stop: asyncio.Event, drain: Drain | None = None) -> None:
        """Accept until `stop` is set; then `drain` decides what open connections may finish."""
        async with asyncio.TaskGroup() as tg:
            accepters = [tg.create_task(self._accept_loop(sock, tg)) for sock in self._sockets]
            await stop.wait()
            self.stop_requested = True
            for task in accepters:
                task.cancel()
            self.close_sockets()
            if drain is not None:
                await drain(dict(self._connections))
            for task in list(self._tasks):
                task.cancel()

    def close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()

    async def _accept_loop(self, sock: socket.socket, tg: asyncio.TaskGroup) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, addr = await loop.sock_accept(sock)
            except OSError as exc:
                self.log.warning("accept_failed", error=str(exc))
                await asyncio.sleep(0.1)
                continue
            task = tg.create_task(
                self._serve_one(client, format_address(addr[0], addr[1]), str(addr[0]))
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _admit(self, task: asyncio.Task[None], host: str) -> None:
        """Count a new unauthenticated connection; over a cap, the oldest one goes.

        Closing the oldest rather than refusing the newest keeps the daemon reachable under a
        flood of idle connections: a caller that completes its handshake promptly gets through.
        """
        same = [t for t, h in self._unauthenticated.items() if h == host]
        victims: list[asyncio.Task[None]] = []
        if len(same) >= self.limits.max_unauthenticated_per_address:
            victims.append(same[0])
        elif len(self._unauthenticated) >= self.limits.max_unauthenticated:
            victims.append(next(iter(self._unauthenticated)))
        for victim in victims:
            self._unauthenticated.pop(victim, None)
            self.stats.refused += 1
            self.log.warning(
                "unauthenticated_connection_dropped",
                peer_host=host,
                reason="too many connections waiting for authentication",
                cap=self.limits.max_unauthenticated,
                cap_per_address=self.limits.max_unauthenticated_per_address,
            )
            victim.cancel()
        self._unauthenticated[task] = host

    def _expire(self, task: asyncio.Task[None], peer: str) -> None:
        """The handshake deadline passed and the peer is still not authenticated: close it."""
        if self._unauthenticated.pop(task, None) is not None:
            self.stats.refused += 1
            self.log.warning(
                "handshake_timeout",
                peer=peer,
                reason=f"not authenticated within {self.limits.handshake_timeout:g} s",
            )
            task.cancel()

    async def _serve_one(self, client: socket.socket, peer: str, host: str = "") -> None:
        self.stats.total += 1
        log = self.log.bind(peer=peer)
        conn: Connection | None = None
        current = asyncio.current_task()
        assert current is not None
        loop = asyncio.get_running_loop()
        self._admit(current, host or peer)
        deadline = loop.call_later(self.limits.handshake_timeout, self._expire, current, peer)
        try:
            try:
                conn = await self._open(client, peer, log)
            except asyncio.CancelledError:
                if current in self._unauthenticated or self.stop_requested:
                    raise
                current.uncancel()
                return  # dropped by a cap or the deadline (logged there)
            if conn is None:
                self.stats.refused += 1
                return
            conn.watch_authentication(lambda: self._authenticated(current, deadline))
            self.stats.active += 1
            self._connections[conn] = current
            try:
                await self.handler(conn)
            except asyncio.CancelledError:
                if conn.authenticated or current in self._unauthenticated or self.stop_requested:
                    raise
                current.uncancel()  # dropped by a cap or the deadline (logged there)
            finally:
                self.stats.active -= 1
                self._connections.pop(conn, None)
        except (NetError, ProtocolError) as exc:
            log.warning("connection_closed", reason=str(exc), error=type(exc).__name__)
        except Exception:  # a connection boundary: log it, keep serving everyone else
            log.exception("connection_handler_crashed")
        finally:
            deadline.cancel()
            self._unauthenticated.pop(current, None)
            if conn is not None:
                await conn.close()
            else:
                client.close()

    def _authenticated(self, task: asyncio.Task[None], deadline: asyncio.TimerHandle) -> None:
        deadline.cancel()
        self._unauthenticated.pop(task, None)

    @property
    def unauthenticated(self) -> int:
        """Connections accepted and not yet authenticated."""
        return len(self._unauthenticated)

    async def _open(self, client: socket.socket, peer: str, log: Any) -> Connection | None:
        client.setblocking(False)
        set_keepalive(client, self.limits)
        first = await _peek(client, PEEK_TIMEOUT)
        if not first:
            log.info("connection_closed_before_data")
            return None
        if self.accept_bulk and first == bulk.DATA_PREAMBLE[:1]:
            return await bulk.accept(
                client,
                peer,
                ssl_context=self.ssl_context,
                limits=self.limits,
                refusal_text=self.refusal_text,
                log=log,
            )
        loop = asyncio.get_running_loop()
        offers_tls = first[0] == TLS_RECORD_HANDSHAKE
        refused = tls_mismatch(self.ssl_context is not None and not self.tls_optional, offers_tls)
        if refused is not None and self.tls_optional:
            refused = None
        if refused is not None:
            event, reason = refused
            log.warning(event, reason=reason)
            if self.ssl_context is not None:
                with contextlib.suppress(OSError):
                    await loop.sock_sendall(client, tls_required_reply(self.refusal_text))
            return None
        stream = FrameStream(guarded=True)
        try:
            use_tls = self.ssl_context if offers_tls else None
            await loop.connect_accepted_socket(
                lambda: stream,
                sock=client,
                ssl=use_tls,
                ssl_handshake_timeout=self.limits.tls_handshake_timeout if use_tls else None,
            )
        except (ssl.SSLError, ConnectionError, OSError, TimeoutError) as exc:
            log.warning("tls_handshake_failed", reason=describe_tls_failure(exc))
            return None
        return StreamConnection(stream, self.limits, peer)


async def _peek(sock: socket.socket, timeout: float) -> bytes:
    """Wait until the socket is readable and look at its first byte without consuming it."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        async with asyncio.timeout(timeout):
            await ready
    except TimeoutError:
        return b""
    finally:
        loop.remove_reader(sock.fileno())
    try:
        return sock.recv(1, socket.MSG_PEEK)
    except (BlockingIOError, OSError):
        return b""
