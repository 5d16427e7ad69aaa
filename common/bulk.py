"""Bulk data connections: a blocking socket (TLS or plain) owned by one worker thread.

A remote copy moves every byte of a job from one Storage Daemon to another. On the event loop each
16 KiB TLS record costs Python calls and buffer copies under the GIL, on the same thread that runs
the job. Here the connection's socket is blocking and only its worker thread touches it: OpenSSL
encrypts, decrypts and calls the kernel without the GIL, while the loop and the volume threads go on.

The dialer announces such a connection with `DATA_PREAMBLE`, in clear, before TLS; the listener,
which peeks at the first byte of every connection, hands the socket to a thread instead of the
event loop's TLS. After that everything is as on any connection: the TLS handshake, the job's
one-time-key authentication, then frames.

One thread owns the socket (an OpenSSL connection must not be used from two threads at once), so
sends and receives take turns in one queue:
- sends are written behind: up to SEND_AHEAD frames wait for the worker before `send` waits;
- receiving reads ahead, up to READ_AHEAD frames, but only across record batches (msgpack
  arrays): after a message or a signal the peer usually waits for an answer, and a read queued
  then would hold up that answer;
- `receive_batches` hands each record batch to its consumer in the connection's own thread,
  between two reads: a File Daemon's restore decrypts, decodes and writes files in one thread.
  Run apart, the receiving thread and the writing one take the GIL from each other after every
  system call: a restore of the Linux source tree (83,731 files, TLS, 2 MiB frames) took
  5.2-6.7 s and 5.3-6.8 CPU-s that way, 4.1-5.5 s and 3.9-5.0 CPU-s in one thread
  (docs/performance.md, session 6).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final

from common import gather
from common.blocking_tls import BioTls
from common.link import (
    TLS_RECORD_HANDSHAKE,
    Body,
    Connection,
    ConnectionClosed,
    Limits,
    NetError,
    Parts,
    PeerTimeout,
    format_address,
    is_batch,
    set_keepalive,
    tls_mismatch,
    tls_required_reply,
)
from common.tls import describe_ssl_error
from protocol.frames import HEADER_SIZE, Signal, parse_header

DATA_PREAMBLE: Final = b"SRDATA/1"
# Frames on a bulk connection may be this large (the usual limit is Bareos's 1,000,000 bytes): each
# frame is one hand-over between the connection's thread, the event loop and the volume threads,
# and on a VM such a hand-over (a futex wake, the GIL changing hands) costs tens of microseconds.
BULK_FRAME_SIZE: Final = 8 * 1024 * 1024
SEND_AHEAD: Final = 3
READ_AHEAD: Final = 3
PREAMBLE_TIMEOUT: Final = 30.0
# Accepted bulk connections (each with its thread) that may wait for authentication at once.
MAX_UNAUTHENTICATED: Final = 32


class _Waiting:
    """How many accepted bulk connections wait for authentication now (one event loop per process)."""

    count = 0


class BlockingChannel:
    """Framed I/O on a blocking socket, plain or TLS; every method but `interrupt` runs in the owning thread."""

    def __init__(self, sock: socket.socket, tls: BioTls | None, limits: Limits) -> None:
        self.sock = sock
        self.tls = tls
        self._stream: socket.socket | BioTls = tls if tls is not None else sock
        self.max_frame_size = (
            limits.max_frame_size
        )  # BULK_FRAME_SIZE once the peer is authenticated
        self.frame_timeout = limits.frame_timeout
        self._send_error: ConnectionClosed | None = None

    def send_parts(self, parts: Parts) -> None:
        # Frames are queued one job each: after a failed one, none behind it may leave (no gap).
        if self._send_error is not None:
            raise self._send_error
        try:
            if self.tls is None:
                gather.write_all(self.sock.sendmsg, parts)
            else:
                for part in parts:
                    self.tls.sendall(part)
        except (OSError, ssl.SSLError) as exc:
            self._send_error = ConnectionClosed(f"send failed: {exc}")
            raise self._send_error from exc

    def recv_event(self, reuse: bytearray | None = None) -> Body | Signal:
        """The next frame's body, or its signal. With `reuse`, a body that fits in it is received
        into it and returned as a view of it, valid until `reuse` takes the next frame: no buffer
        to allocate and zero per frame (a restore's 2 MiB batches: 1.3 GB of memset for the Linux
        tree); a larger one comes in a buffer of its own."""
        while True:
            header = self._recv_exactly(HEADER_SIZE, "frame header")
            announced = parse_header(bytes(header), self.max_frame_size)
            if announced is Signal.HEARTBEAT:
                continue
            if isinstance(announced, Signal):
                return announced
            if not announced:
                return b""
            # A body must keep coming (as on the event-loop carrier); a header may be awaited long.
            self.sock.settimeout(self.frame_timeout)
            try:
                if reuse is not None and announced <= len(reuse):
                    body = memoryview(reuse)[:announced]
                    self._recv_into(body, "frame body")
                    return body
                return self._recv_exactly(announced, "frame body")
            finally:
                self.sock.settimeout(None)

    def _recv_exactly(self, n: int, what: str) -> bytearray:
        """n bytes, received straight into the buffer the caller keeps."""
        buf = bytearray(n)
        with memoryview(buf) as view:
            self._recv_into(view, what)
        return buf

    def _recv_into(self, view: memoryview, what: str) -> None:
        """Fill `view` from the connection."""
        n = len(view)
        got = 0
        try:
            while got < n:
                k = self._stream.recv_into(view[got:], n - got)
                if k == 0:
                    raise ConnectionClosed(
                        "connection closed by peer"
                        if got == 0 and what == "frame header"
                        else f"connection closed mid-{what}"
                    )
                got += k
        except TimeoutError as exc:
            raise PeerTimeout(
                f"peer stalled: no complete {what} within {self.frame_timeout:g} s"
            ) from exc
        except (OSError, ssl.SSLError) as exc:
            raise ConnectionClosed(f"receive failed: {exc}") from exc

    def interrupt(self) -> None:
        """Wake the owning thread from a blocked send or receive (any thread may call this)."""
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)

    def close(self) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            self.sock.close()


class ThreadedConnection(Connection):
    """A Connection whose blocking socket lives in one worker thread (see the module docstring)."""

    def __init__(
        self,
        channel: BlockingChannel,
        limits: Limits,
        peer: str,
        worker: ThreadPoolExecutor,
        *,
        counted: bool = False,
    ) -> None:
        super().__init__(limits, peer)
        self._channel = channel
        self._counted = counted  # one of the accepted connections still waiting for authentication
        self._loop = asyncio.get_running_loop()
        self._worker = worker  # one thread: it opened the socket, and it alone uses it
        self._sends: deque[asyncio.Future[None]] = deque()
        self._inbox: asyncio.Queue[Body | Signal | BaseException] = asyncio.Queue()
        self._room = threading.Semaphore(READ_AHEAD)
        self._pumping = False
        # `receive_batches` holds the thread (in a read between two batches) until it is done
        self._sinking = False
        self._stopping = threading.Event()

    @property
    def ssl_object(self) -> Any:
        tls = self._channel.tls
        return None if tls is None else tls.ssl_object

    # -- sending -----------------------------------------------------------------------------

    async def _send_frames(self, parts: Parts) -> None:
        self._sends.append(
            self._loop.run_in_executor(self._worker, self._channel.send_parts, parts)
        )
        while len(self._sends) > SEND_AHEAD or (self._sends and self._sends[0].done()):
            await self._sends.popleft()

    def on_authenticated(self) -> None:
        """Frames up to BULK_FRAME_SIZE from now on (an unauthenticated peer gets the usual limit)."""
        self.limits = dataclasses.replace(self.limits, max_frame_size=BULK_FRAME_SIZE)
        self._channel.max_frame_size = BULK_FRAME_SIZE  # read by the worker at its next header
        self._uncount()

    def _uncount(self) -> None:
        if self._counted:
            self._counted = False
            _Waiting.count -= 1

    async def flush(self) -> None:
        """Wait until every queued frame is handed to the kernel."""
        while self._sends:
            await self._sends.popleft()

    # -- receiving ---------------------------------------------------------------------------

    async def recv_event(self, timeout: float | None = None) -> Body | Signal:
        if self._inbox.empty() and not self._pumping:
            if self.closed:
                raise ConnectionClosed("connection already closed")
            self._pumping = True
            self._worker.submit(self._pump)
        try:
            async with asyncio.timeout(timeout):
                event = await self._inbox.get()
        except TimeoutError as exc:
            raise PeerTimeout(f"peer stalled: no frame within {timeout:g} s") from exc
        self._room.release()
        if isinstance(event, BaseException):
            raise event
        return event

    def _pump(self) -> None:
        """Worker thread: receive frames until one that is not a record batch (or an error)."""
        while True:
            self._room.acquire()
            event: Body | Signal | BaseException
            if self._stopping.is_set():
                event = ConnectionClosed("connection closed")
            else:
                try:
                    event = self._channel.recv_event()
                except Exception as exc:  # delivered to the reader: it ends the stream either way
                    event = exc
            last = not is_batch(event) if not isinstance(event, BaseException) else True
            try:
                self._loop.call_soon_threadsafe(self._deliver, event, last)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                return
            if last:
                return

    async def receive_batches(self, consume: Callable[[Body], None]) -> Body | Signal:
        """Record batches go to `consume` in the connection's own thread (see the module
        docstring), until a frame that is not a batch, which is returned."""
        while not self._inbox.empty() or self._pumping:  # frames `recv_event` already read ahead
            event = await self.recv_event()
            if not is_batch(event):
                return event
            await asyncio.to_thread(consume, event)
        if self.closed:
            raise ConnectionClosed("connection already closed")
        self._sinking = True  # until the thread is done with it, even if this task is cancelled
        sinking = self._worker.submit(self._sink, consume)
        sinking.add_done_callback(self._sink_done)
        return await asyncio.wrap_future(sinking)

    def _sink_done(self, _sinking: Future[Body | Signal]) -> None:
        self._sinking = False

    def _sink(self, consume: Callable[[Body], None]) -> Body | Signal:
        """Worker thread: receive frames, consuming batches, until one that is not a batch. Each
        batch is received into the buffer of the one before it when it fits (`recv_event`): the
        view `consume` gets is valid during its call only."""
        frame = bytearray()
        while True:
            if self._stopping.is_set():
                raise ConnectionClosed("connection closed")
            event = self._channel.recv_event(frame)
            if not is_batch(event):
                return bytes(event) if isinstance(event, memoryview) else event
            consume(event)
            if isinstance(event, bytearray):
                frame = event  # the largest frame yet: its buffer takes the ones after it

    def _deliver(self, event: Body | Signal | BaseException, last: bool) -> None:
        if last:
            self._pumping = False
        self._inbox.put_nowait(event)

    # -- closing -----------------------------------------------------------------------------

    def start_heartbeats(self, interval: float | None = None) -> None:
        """None here: a heartbeat would queue behind a waiting read in the one thread. TCP keepalive
        and TCP_USER_TIMEOUT (common.link.set_keepalive) watch the peer instead, and the jobs'
        control connections, which do carry heartbeats, end a job whose daemon stopped answering."""

    async def _shutdown(self) -> None:
        try:
            if not self._pumping and not self._sinking:
                # frames queued behind a blocked read would never leave anyway
                with contextlib.suppress(NetError, TimeoutError):
                    async with asyncio.timeout(self.limits.frame_timeout):
                        await self.flush()
        finally:
            # Even when the close itself is canceled: wake the worker, queue the socket's close
            # behind whatever it still has, and let the thread end after it.
            self._uncount()
            self._stopping.set()
            self._channel.interrupt()
            self._room.release(READ_AHEAD)  # a pump waiting for room sees `_stopping`
            closing = self._worker.submit(self._channel.close)
            self._worker.shutdown(wait=False)
            for send in self._sends:
                send.add_done_callback(
                    _retrieve
                )  # a failed write-behind is not an "unhandled" error
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await asyncio.wrap_future(closing)


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


# -- opening ---------------------------------------------------------------------------------


def _tune(sock: socket.socket, limits: Limits) -> None:
    set_keepalive(sock, limits)
    # A small frame (a message, EOD) must not wait for the ACK of the previous one (~40 ms).
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _connect(
    host: str, port: int, ssl_context: ssl.SSLContext | None, limits: Limits
) -> BlockingChannel:
    """Dialer side, in a thread: TCP, the preamble, then TLS; failures name the step."""
    where = format_address(host, port)
    try:
        sock = socket.create_connection((host, port), timeout=limits.connect_timeout)
    except socket.gaierror as exc:
        raise NetError("dns", f"cannot resolve {host!r}: {exc}") from exc
    except OSError as exc:
        raise NetError("tcp", f"cannot connect to {where}: {exc}") from exc
    _tune(sock, limits)
    tls: BioTls | None = None
    try:
        sock.sendall(DATA_PREAMBLE)
        if ssl_context is not None:
            tls = BioTls(sock, ssl_context, server_side=False)
            try:
                tls.handshake(limits.tls_handshake_timeout)
            except (ssl.SSLError, OSError) as exc:
                raise NetError(
                    "tls", f"TLS handshake with {where} failed: {describe_ssl_error(exc)}"
                ) from exc
        sock.settimeout(None)
    except OSError as exc:
        sock.close()
        raise NetError("tcp", f"cannot talk to {where}: {exc}") from exc
    except BaseException:
        sock.close()
        raise
    return BlockingChannel(sock, tls, limits)


async def dial(
    host: str, port: int, ssl_context: ssl.SSLContext | None, limits: Limits
) -> ThreadedConnection:
    """Open a bulk data connection (see the module docstring)."""
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk-io")
    channel = await _in_worker(worker, _connect, host, port, ssl_context, limits)
    return ThreadedConnection(channel, limits, format_address(host, port), worker)


async def _in_worker(
    worker: ThreadPoolExecutor, opener: Callable[..., BlockingChannel | None], *args: Any
) -> BlockingChannel:
    """Run an opener in the connection's own thread; a channel opened after a cancel is closed."""
    job = worker.submit(opener, *args)
    try:
        channel = await asyncio.wrap_future(job)
    except BaseException:
        job.add_done_callback(_close_late_channel)
        worker.shutdown(wait=False)
        raise
    if channel is None:
        worker.shutdown(wait=False)
        raise _Refused
    return channel


class _Refused(Exception):
    """The listener side refused the connection (already logged)."""


def _close_late_channel(job: Future[BlockingChannel | None]) -> None:
    if not job.cancelled() and job.exception() is None and (channel := job.result()) is not None:
        channel.close()


def _accept(
    client: socket.socket,
    ssl_context: ssl.SSLContext | None,
    limits: Limits,
    refusal_text: str,
    log: Any,
) -> BlockingChannel | None:
    """Listener side, in the connection's thread: apply the TLS policy, do the handshake."""
    client.setblocking(True)
    client.settimeout(limits.tls_handshake_timeout)
    try:
        first = client.recv(1, socket.MSG_PEEK)
        if not first:
            log.info("connection_closed_before_data")
            return None
        refused = tls_mismatch(ssl_context is not None, first[0] == TLS_RECORD_HANDSHAKE)
        if refused is not None:
            event, reason = refused
            log.warning(event, reason=reason)
            if ssl_context is not None:
                client.sendall(tls_required_reply(refusal_text))
            return None
        tls: BioTls | None = None
        if ssl_context is not None:
            tls = BioTls(client, ssl_context, server_side=True)
            try:
                tls.handshake(limits.tls_handshake_timeout)
            except (ssl.SSLError, OSError) as exc:
                log.warning("tls_handshake_failed", reason=describe_ssl_error(exc))
                return None
        client.settimeout(None)
        return BlockingChannel(client, tls, limits)
    except OSError as exc:
        log.info("connection_closed_before_data", reason=str(exc))
        return None


async def read_preamble(client: socket.socket) -> bytes:
    """The first len(DATA_PREAMBLE) bytes, read on the event loop (a silent peer holds no thread)."""
    loop = asyncio.get_running_loop()
    got = b""
    async with asyncio.timeout(PREAMBLE_TIMEOUT):
        while len(got) < len(DATA_PREAMBLE):
            chunk = await loop.sock_recv(client, len(DATA_PREAMBLE) - len(got))
            if not chunk:
                break
            got += chunk
    return got


async def accept(
    client: socket.socket,
    peer: str,
    *,
    ssl_context: ssl.SSLContext | None,
    limits: Limits,
    refusal_text: str,
    log: Any,
) -> ThreadedConnection | None:
    """Take over an accepted socket whose first byte announced a bulk data connection.

    The preamble is read on the event loop; only then does the connection get its thread, for the
    TLS handshake (bounded by TLS Handshake Timeout) and everything after. A cancel (the daemon
    stopping) shuts the socket down so that the thread lets go of it at once.
    """
    _tune(client, limits)
    try:
        preamble = await read_preamble(client)
    except (TimeoutError, OSError) as exc:
        log.info("connection_closed_before_data", reason=str(exc) or "no preamble in time")
        return None
    if preamble != DATA_PREAMBLE:
        log.warning("data_preamble_refused", got=preamble.hex())
        return None
    if _Waiting.count >= MAX_UNAUTHENTICATED:
        log.warning(
            "bulk_connection_refused",
            reason=f"{MAX_UNAUTHENTICATED} bulk connections are already waiting for authentication",
        )
        return None
    _Waiting.count += 1  # until the ThreadedConnection is authenticated or closed
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk-io")
    try:
        channel = await _in_worker(worker, _accept, client, ssl_context, limits, refusal_text, log)
    except _Refused:
        _Waiting.count -= 1
        return None
    except BaseException:
        _Waiting.count -= 1
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RDWR)  # a cancel (the daemon stopping): wake the thread
        raise
    return ThreadedConnection(channel, limits, peer, worker, counted=True)
