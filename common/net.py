"""The one adapter between sockets and the sans-IO protocol: connections, the listener, the dialer."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from common.stream import FrameStream
from common.tls import describe_ssl_error
from protocol.errors import FrameTooLarge, ProtocolError
from protocol.frames import (
    HEADER,
    HEADER_SIZE,
    MAX_FRAME_SIZE,
    Signal,
    encode_frame,
    encode_signal,
    parse_header,
)
from protocol.messages import Code, ErrorReply, Message, decode_message, encode_message

TLS_RECORD_HANDSHAKE: Final = 0x16
DEFAULT_FRAME_TIMEOUT: Final = 30.0
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_AUTH_TIMEOUT: Final = 30.0
DEFAULT_TLS_HANDSHAKE_TIMEOUT: Final = 10.0
PEEK_TIMEOUT: Final = 30.0
WRITE_BUFFER_HIGH: Final = 2 * 1024 * 1024


class NetError(Exception):
    """Root of networking errors; `step` says where a connection failed (dns, tcp, tls, auth, io)."""

    retriable = True

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step
        self.message = message


class ConnectionClosed(NetError):
    """The peer closed the connection."""

    def __init__(self, message: str = "connection closed by peer") -> None:
        super().__init__("io", message)


class PeerTimeout(NetError):
    """The peer went silent for longer than allowed."""

    def __init__(self, message: str) -> None:
        super().__init__("io", message)


class PeerRefused(NetError):
    """The peer answered with an ErrorReply instead of continuing."""

    retriable = False

    def __init__(self, code: int, text: str) -> None:
        super().__init__("auth" if code != Code.TLS_REQUIRED else "tls", f"{code} {text}")
        self.code = code
        self.text = text


@dataclass(frozen=True)
class Limits:
    """Every limit a connection enforces; daemons build one from their configuration."""

    max_frame_size: int = MAX_FRAME_SIZE
    frame_timeout: float = DEFAULT_FRAME_TIMEOUT
    auth_timeout: float = DEFAULT_AUTH_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    tls_handshake_timeout: float = DEFAULT_TLS_HANDSHAKE_TIMEOUT
    heartbeat_interval: float = 0.0


class Connection:
    """A framed, typed connection over an asyncio stream (TLS or plain)."""

    def __init__(self, stream: FrameStream, limits: Limits, peer: str) -> None:
        self._stream = stream
        self.limits = limits
        self.peer = peer
        self._send_lock = asyncio.Lock()
        self._last_send = asyncio.get_running_loop().time()
        self.closed = False
        # Let a whole data batch or two sit in the transport: `drain` then returns at once and the
        # sender goes on reading while the kernel sends (the default 64 KiB mark stalls every batch).
        with contextlib.suppress(AttributeError, NotImplementedError, RuntimeError):
            stream.transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)

    @property
    def tls(self) -> bool:
        return self._stream.get_extra_info("ssl_object") is not None

    @property
    def ssl_object(self) -> Any:
        return self._stream.get_extra_info("ssl_object")

    async def _write(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionClosed("connection already closed")
        async with self._send_lock:
            try:
                self._stream.write(data)
                await self._stream.drain()
            except (ConnectionError, OSError) as exc:
                raise ConnectionClosed(f"send failed: {exc}") from exc
            self._last_send = asyncio.get_running_loop().time()

    async def send(self, msg: Message) -> None:
        await self._write(encode_frame(encode_message(msg), self.limits.max_frame_size))

    async def send_raw(self, body: bytes) -> None:
        """Send one already-encoded frame body (data streams): header and body go out unjoined."""
        if len(body) > self.limits.max_frame_size:
            raise FrameTooLarge(len(body), self.limits.max_frame_size)
        await self._write_parts((HEADER.pack(len(body)), body))

    async def send_parts(self, parts: list[bytes | memoryview]) -> None:
        """Send one frame whose body is the concatenation of `parts`, without joining them."""
        size = sum(len(p) for p in parts)
        if size > self.limits.max_frame_size:
            raise FrameTooLarge(size, self.limits.max_frame_size)
        await self._write_parts(_coalesce([HEADER.pack(size), *parts]))

    async def _write_parts(self, parts: tuple[bytes | memoryview, ...]) -> None:
        if self.closed:
            raise ConnectionClosed("connection already closed")
        async with self._send_lock:
            try:
                self._stream.writelines(parts)
                await self._stream.drain()
            except (ConnectionError, OSError) as exc:
                raise ConnectionClosed(f"send failed: {exc}") from exc
            self._last_send = asyncio.get_running_loop().time()

    async def send_signal(self, signal: Signal) -> None:
        await self._write(encode_signal(signal))

    async def _read_exactly(self, n: int, timeout: float | None, what: str) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self._stream.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            raise ConnectionClosed(
                "connection closed by peer" if not exc.partial else f"connection closed mid-{what}"
            ) from exc
        except TimeoutError as exc:
            raise PeerTimeout(f"peer stalled: no complete {what} within {timeout:g} s") from exc
        except (ConnectionError, OSError, ssl.SSLError) as exc:
            raise ConnectionClosed(f"receive failed: {exc}") from exc

    async def recv_event(self, timeout: float | None = None) -> bytes | Signal:
        """The next frame body or signal; heartbeats are absorbed here."""
        while True:
            header = await self._read_exactly(HEADER_SIZE, timeout, "frame header")
            announced = parse_header(header, self.limits.max_frame_size)
            if announced is Signal.HEARTBEAT:
                continue
            if isinstance(announced, Signal):
                return announced
            if announced == 0:
                return b""
            return await self._read_exactly(announced, self.limits.frame_timeout, "frame body")

    async def recv(self, timeout: float | None = None) -> Message | Signal:
        """The next typed message or signal."""
        event = await self.recv_event(timeout)
        if isinstance(event, Signal):
            return event
        return decode_message(event)

    async def recv_message(self, timeout: float | None = None) -> Message:
        """The next message; a TERMINATE signal or EOF is ConnectionClosed, other signals errors."""
        event = await self.recv(timeout)
        if event is Signal.TERMINATE:
            raise ConnectionClosed("peer terminated the conversation")
        if isinstance(event, Signal):
            raise ProtocolError(f"expected a message, got signal {event.name}")
        return event

    @contextlib.asynccontextmanager
    async def heartbeats(self, interval: float | None = None) -> AsyncIterator[None]:
        """Send HEARTBEAT whenever nothing else was sent for `interval` seconds."""
        every = self.limits.heartbeat_interval if interval is None else interval
        if every <= 0:
            yield
            return
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(self._heartbeat_loop(every))
            try:
                yield
            finally:
                task.cancel()

    async def _heartbeat_loop(self, every: float) -> None:
        loop = asyncio.get_running_loop()
        while not self.closed:
            idle = loop.time() - self._last_send
            if idle >= every:
                try:
                    await self.send_signal(Signal.HEARTBEAT)
                except NetError:
                    return
                idle = 0.0
            await asyncio.sleep(every - idle)

    async def close(self, terminate: bool = False) -> None:
        if self.closed:
            return
        if terminate:
            with contextlib.suppress(NetError, ProtocolError):
                await self.send_signal(Signal.TERMINATE)
        self.closed = True
        self._stream.close()
        with contextlib.suppress(ConnectionError, OSError, ssl.SSLError, TimeoutError):
            async with asyncio.timeout(2):
                await self._stream.wait_closed()


_COALESCE_BELOW: Final = 64 * 1024


def _coalesce(parts: list[bytes | memoryview]) -> tuple[bytes | memoryview, ...]:
    """Join runs of small parts (each becomes a TLS record otherwise); large payloads stay uncopied."""
    out: list[bytes | memoryview] = []
    run: list[bytes | memoryview] = []
    for part in parts:
        if len(part) >= _COALESCE_BELOW:
            if run:
                out.append(b"".join(run))
                run = []
            out.append(part)
        else:
            run.append(part)
    if run:
        out.append(b"".join(run))
    return tuple(out)


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def dial(
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    limits: Limits,
) -> Connection:
    """Open a connection, failing with a NetError whose step names DNS, TCP or TLS."""
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
                    FrameStream, str(sockaddr[0]), int(sockaddr[1]), family=family
                )
            break
        except (OSError, TimeoutError) as exc:
            last = exc
    if stream is None:
        raise NetError("tcp", f"cannot connect to {where}: {last or 'no address'}")
    _set_keepalive(stream.get_extra_info("socket"), limits.heartbeat_interval)
    if ssl_context is not None:
        try:
            stream.transport = await loop.start_tls(
                stream.transport, stream, ssl_context,
                ssl_handshake_timeout=limits.tls_handshake_timeout,
            )
        except (ssl.SSLError, ConnectionError, OSError, TimeoutError) as exc:
            stream.close()
            raise NetError(
                "tls", f"TLS handshake with {where} failed: {describe_tls_failure(exc)}"
            ) from exc
    return Connection(stream, limits, where)


def describe_tls_failure(exc: BaseException) -> str:
    """Operator-readable reason for a failed TLS handshake."""
    return describe_ssl_error(exc)


def _set_keepalive(sock: socket.socket | None, interval: float) -> None:
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if interval > 0 and hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, max(1, int(interval)))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(1, int(interval)))


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
    stats: ListenerStats = field(default_factory=ListenerStats)
    bound: list[str] = field(default_factory=list)
    _sockets: list[socket.socket] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _connections: dict[Connection, asyncio.Task[None]] = field(default_factory=dict)

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
            task = tg.create_task(self._serve_one(client, format_address(addr[0], addr[1])))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve_one(self, client: socket.socket, peer: str) -> None:
        self.stats.total += 1
        log = self.log.bind(peer=peer)
        conn: Connection | None = None
        try:
            conn = await self._open(client, peer, log)
            if conn is None:
                self.stats.refused += 1
                return
            self.stats.active += 1
            current = asyncio.current_task()
            assert current is not None
            self._connections[conn] = current
            try:
                await self.handler(conn)
            finally:
                self.stats.active -= 1
                self._connections.pop(conn, None)
        except (NetError, ProtocolError) as exc:
            log.warning("connection_closed", reason=str(exc), error=type(exc).__name__)
        except Exception:  # a connection boundary: log it, keep serving everyone else
            log.exception("connection_handler_crashed")
        finally:
            if conn is not None:
                await conn.close()
            else:
                client.close()

    async def _open(self, client: socket.socket, peer: str, log: Any) -> Connection | None:
        client.setblocking(False)
        _set_keepalive(client, self.limits.heartbeat_interval)
        first = await _peek(client, PEEK_TIMEOUT)
        if not first:
            log.info("connection_closed_before_data")
            return None
        offers_tls = first[0] == TLS_RECORD_HANDSHAKE
        loop = asyncio.get_running_loop()
        if self.ssl_context is not None and not offers_tls:
            log.warning("plain_tcp_refused", reason="TLS is required on this daemon")
            refusal = ErrorReply(code=Code.TLS_REQUIRED, text=self.refusal_text)
            with contextlib.suppress(OSError):
                await loop.sock_sendall(client, encode_frame(encode_message(refusal)))
            return None
        if self.ssl_context is None and offers_tls:
            log.warning("tls_refused", reason="TLS is disabled on this daemon (TLS Enable = no)")
            return None
        stream = FrameStream()
        try:
            await loop.connect_accepted_socket(
                lambda: stream,
                sock=client,
                ssl=self.ssl_context,
                ssl_handshake_timeout=self.limits.tls_handshake_timeout
                if self.ssl_context
                else None,
            )
        except (ssl.SSLError, ConnectionError, OSError, TimeoutError) as exc:
            log.warning("tls_handshake_failed", reason=describe_tls_failure(exc))
            return None
        return Connection(stream, self.limits, peer)


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
