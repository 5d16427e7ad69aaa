"""What every framed connection offers, whatever carries its bytes: errors, limits, typed send/receive.

Two carriers exist. `common.net.StreamConnection` runs on the event loop (control connections:
Directors, consoles, File Daemon data). `common.bulk.ThreadedConnection` owns a blocking socket in a
worker thread, for bulk data between Storage Daemons: TLS and the socket copies then run in OpenSSL
and the kernel without the GIL, beside the event loop instead of on it.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

from protocol.errors import FrameTooLarge, ProtocolError
from protocol.frames import HEADER, MAX_FRAME_SIZE, Signal, encode_frame, encode_signal
from protocol.messages import Code, ErrorReply, Message, decode_message, encode_message
from protocol.records import BatchFrame

TLS_RECORD_HANDSHAKE: Final = 0x16  # the first byte a TLS client sends
DEFAULT_FRAME_TIMEOUT: Final = 30.0
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_AUTH_TIMEOUT: Final = 30.0
DEFAULT_TLS_HANDSHAKE_TIMEOUT: Final = 10.0
# Heartbeats: daemons send one on every connection they have said nothing on for Heartbeat Interval
# seconds. A peer that has shown it sends them and then says nothing at all, not even a heartbeat,
# for 2 x interval + HEARTBEAT_GRACE is taken for dead (stopped, hung, or cut off): see `Liveness`.
DEFAULT_HEARTBEAT_INTERVAL: Final = 60.0
HEARTBEAT_GRACE: Final = 10.0
# Below the heartbeats, the kernel drops a connection whose peer stops acknowledging for this long
# (TCP_USER_TIMEOUT: sent data, or keepalive probes, unacknowledged); keepalive probes an idle
# connection after KEEPALIVE_IDLE, then every KEEPALIVE_INTERVAL seconds.
TCP_USER_TIMEOUT: Final = 120.0
KEEPALIVE_IDLE: Final = 60.0
KEEPALIVE_INTERVAL: Final = 10.0
KEEPALIVE_PROBES: Final = 6
# Before a peer has proved who it is (hostile until then): one deadline for everything from accept
# to the last handshake message, frames no larger than a Hello needs, and caps on how many such
# connections a listener holds at once, in all and per source address (the oldest goes first).
DEFAULT_HANDSHAKE_TIMEOUT: Final = 20.0
UNAUTHENTICATED_FRAME_SIZE: Final = 16 * 1024
MAX_UNAUTHENTICATED: Final = 256
MAX_UNAUTHENTICATED_PER_ADDRESS: Final = 32

# A frame body as received: bytes, or the bytearray a blocking socket received it into (no copy).
Body = bytes | bytearray | memoryview  # a view: of a buffer the receiver reuses (common.bulk)
_BATCH_MARKERS: Final = frozenset({0xDC, 0xDD, *range(0x90, 0xA0)})  # msgpack array headers


def is_batch(event: Body | Signal) -> TypeGuard[Body]:
    """Whether a frame is a record batch (a msgpack array), not a message or a signal."""
    return not isinstance(event, Signal) and len(event) > 0 and event[0] in _BATCH_MARKERS


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
    heartbeat_interval: float = (
        0.0  # 0: no heartbeats, and no peer is ever taken for dead by silence
    )
    heartbeat_grace: float = HEARTBEAT_GRACE
    tcp_user_timeout: float = TCP_USER_TIMEOUT
    keepalive_idle: float = KEEPALIVE_IDLE
    keepalive_interval: float = KEEPALIVE_INTERVAL
    keepalive_probes: int = KEEPALIVE_PROBES
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    unauthenticated_frame_size: int = UNAUTHENTICATED_FRAME_SIZE
    max_unauthenticated: int = MAX_UNAUTHENTICATED
    max_unauthenticated_per_address: int = MAX_UNAUTHENTICATED_PER_ADDRESS


@dataclass
class Liveness:
    """When a silent peer counts as dead (sans-IO: the carrier asks `window()` before each read).

    Only a peer that has sent a heartbeat is ever judged: it runs heartbeats, so even when it has
    nothing to say it sends a frame every interval. From then on a read that sees no frame at all,
    not even a heartbeat, for 2 x interval + grace ends with PeerTimeout. The window restarts with
    every frame, so a long silent phase of the job (a tree walk with nothing to send, a volume
    wait) is fine as long as the heartbeats come. `interval` is this daemon's own Heartbeat
    Interval: daemons that talk to each other should use the same one (the default everywhere);
    0 turns judging off, as it turns sending off.
    """

    interval: float
    grace: float = HEARTBEAT_GRACE
    armed: bool = False

    def heard_heartbeat(self) -> None:
        if self.interval > 0:
            self.armed = True

    def window(self) -> float | None:
        """Seconds a read may see no frame before the peer is dead; None while not judging."""
        return 2 * self.interval + self.grace if self.armed else None


Parts = tuple[bytes | memoryview, ...]


class Connection(abc.ABC):
    """A framed, typed connection: messages, raw data frames and signals both ways."""

    def __init__(self, limits: Limits, peer: str) -> None:
        self.limits = limits
        self.peer = peer
        # Who the peer is, for error texts that reach an operator ("test-fd at 10.0.0.7:9102");
        # whoever knows more than the address (the dialer of a configured daemon) sets it.
        self.peer_name = f"peer {peer}"
        self.closed = False
        self.authenticated = False
        self._auth_watchers: list[Callable[[], None]] = []
        self.liveness = Liveness(limits.heartbeat_interval, limits.heartbeat_grace)
        self._last_send = asyncio.get_running_loop().time()
        self._heartbeat: asyncio.Task[None] | None = None

    # -- what a carrier provides -----------------------------------------------------------

    @property
    @abc.abstractmethod
    def ssl_object(self) -> Any:
        """The TLS object (for the peer certificate), or None on plain TCP."""

    @abc.abstractmethod
    async def _send_frames(self, parts: Parts) -> None:
        """Send whole frames (headers included) in order; raise ConnectionClosed on failure."""

    @abc.abstractmethod
    async def recv_event(self, timeout: float | None = None) -> Body | Signal:
        """The next frame body or signal; heartbeats are absorbed here."""

    @abc.abstractmethod
    async def _shutdown(self) -> None:
        """Close the carrier and wait (briefly) until it is closed."""

    def on_authenticated(self) -> None:
        """Called once the peer has proved who it is (common.auth): heartbeats start."""
        self.start_heartbeats()

    # -- shared behaviour ------------------------------------------------------------------

    @property
    def frame_limit(self) -> int:
        """The largest frame body accepted now: small until the peer is authenticated."""
        if self.authenticated:
            return self.limits.max_frame_size
        return min(self.limits.max_frame_size, self.limits.unauthenticated_frame_size)

    def watch_authentication(self, callback: Callable[[], None]) -> None:
        """Run `callback` once, when the peer is authenticated (the listener stops counting it)."""
        self._auth_watchers.append(callback)

    def mark_authenticated(self) -> None:
        """The handshake succeeded: lift the pre-authentication limits, tell the watchers."""
        if self.authenticated:
            return
        self.authenticated = True
        watchers, self._auth_watchers = self._auth_watchers, []
        for callback in watchers:
            callback()
        self.on_authenticated()

    @property
    def tls(self) -> bool:
        return self.ssl_object is not None

    async def _write_parts(self, parts: Parts) -> None:
        if self.closed:
            raise ConnectionClosed("connection already closed")
        await self._send_frames(parts)
        self._last_send = asyncio.get_running_loop().time()

    async def send(self, msg: Message) -> None:
        await self._write_parts((encode_frame(encode_message(msg), self.limits.max_frame_size),))

    async def send_raw(self, body: bytes) -> None:
        """Send one already-encoded frame body (data streams): header and body go out unjoined."""
        if len(body) > self.limits.max_frame_size:
            raise FrameTooLarge(len(body), self.limits.max_frame_size)
        await self._write_parts((HEADER.pack(len(body)), body))

    async def send_batch_frame(self, frame: BatchFrame) -> None:
        """Send a batch frame made by `encode_batch_frame`: its pieces as they are, each a TLS
        record of its own or more (`COALESCE_BELOW`)."""
        if frame.size > self.limits.max_frame_size:
            raise FrameTooLarge(frame.size, self.limits.max_frame_size)
        await self._write_parts(frame.parts)

    async def send_signal(self, signal: Signal) -> None:
        await self._write_parts((encode_signal(signal),))

    async def receive_batches(self, consume: Callable[[Body], None]) -> Body | Signal:
        """Hand every record batch that arrives to `consume`, in order and in a worker thread,
        until a frame that is not a batch (a message, EOD), which is returned. What `consume`
        raises ends the receiving and is raised here. A bulk connection (common.bulk) calls
        `consume` in its own thread, between its reads, with a view of a buffer the next batch is
        received into: `consume` must not keep the body, nor views of it, past its return."""
        while True:
            event = await self.recv_event()
            if not is_batch(event):
                return event
            await asyncio.to_thread(consume, event)

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

    def start_heartbeats(self, interval: float | None = None) -> None:
        """Send HEARTBEAT now, then whenever nothing else was sent for `interval` seconds.

        The first one tells the peer that this side runs heartbeats (`Liveness`). The task belongs
        to the connection: `close` cancels it and waits for it.
        """
        every = self.limits.heartbeat_interval if interval is None else interval
        if every <= 0 or self.closed or self._heartbeat is not None:
            return
        self._heartbeat = asyncio.get_running_loop().create_task(
            self._heartbeat_loop(every), name=f"heartbeats {self.peer}"
        )

    async def stop_heartbeats(self) -> None:
        task, self._heartbeat = self._heartbeat, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})

    @contextlib.asynccontextmanager
    async def heartbeats(self, interval: float | None = None) -> AsyncIterator[None]:
        """Heartbeats for the duration of a block (connections that are not authenticated)."""
        self.start_heartbeats(interval)
        try:
            yield
        finally:
            await self.stop_heartbeats()

    async def _heartbeat_loop(self, every: float) -> None:
        loop = asyncio.get_running_loop()
        idle = every
        while not self.closed:
            if idle >= every:
                # A heartbeat is one whole frame under the carrier's send lock (or in its one send
                # queue): it goes between two frames of a busy sender, never into one.
                try:
                    await self.send_signal(Signal.HEARTBEAT)
                except NetError:
                    return
            await asyncio.sleep(max(0.0, every - (loop.time() - self._last_send)))
            idle = loop.time() - self._last_send

    async def close(self, terminate: bool = False) -> None:
        if self.closed:
            return
        beating, self._heartbeat = self._heartbeat, None
        if beating is not None:
            beating.cancel()
        try:
            if terminate:
                with contextlib.suppress(NetError, ProtocolError):
                    await self.send_signal(Signal.TERMINATE)
            self.closed = True
            await self._shutdown()
        finally:
            self.closed = True
            if beating is not None:
                await asyncio.wait({beating})


# Pieces of a frame shorter than this are joined before they are sent (`encode_batch_frame`):
# each piece becomes a TLS record of its own; longer payloads stay uncopied.
COALESCE_BELOW: Final = 64 * 1024


def set_keepalive(sock: socket.socket | None, limits: Limits) -> None:
    """TCP keepalive and (Linux) TCP_USER_TIMEOUT: the kernel drops a connection whose peer stopped
    acknowledging, even one blocked in a read or a write that no heartbeat can reach."""
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    options = (
        ("TCP_KEEPIDLE", limits.keepalive_idle),
        ("TCP_KEEPINTVL", limits.keepalive_interval),
        ("TCP_KEEPCNT", limits.keepalive_probes),
    )
    for name, value in options:
        if hasattr(socket, name):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), max(1, int(value)))
    if hasattr(socket, "TCP_USER_TIMEOUT") and limits.tcp_user_timeout > 0:
        with contextlib.suppress(OSError):
            sock.setsockopt(
                socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(limits.tcp_user_timeout * 1000)
            )


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def tls_mismatch(tls_required: bool, offers_tls: bool) -> tuple[str, str] | None:
    """Why a connection is refused before any TLS, as (log event, reason); None when it may go on."""
    if tls_required and not offers_tls:
        return "plain_tcp_refused", "TLS is required on this daemon"
    if not tls_required and offers_tls:
        return "tls_refused", "TLS is disabled on this daemon (TLS Enable = no)"
    return None


def tls_required_reply(text: str) -> bytes:
    """The frame that tells a plain-TCP caller this daemon requires TLS."""
    return encode_frame(encode_message(ErrorReply(code=Code.TLS_REQUIRED, text=text)))
