"""Bulk data connections (common.bulk) over real sockets on 127.0.0.1: TLS and plain, no mocks.

A real `common.net.Listener` peeks the first byte of every connection and hands bulk ones to
`bulk.accept`; the dialer is `common.net.dial(..., bulk_data=True)` or a raw socket when the test
needs the peer to misbehave. `BlockingChannel` is also driven directly over a socketpair.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import socket
import ssl
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import pytest
import structlog

from common import bulk
from common.auth import authenticate_acceptor, authenticate_initiator
from common.blocking_tls import BioTls
from common.bulk import (
    BULK_FRAME_SIZE,
    DATA_PREAMBLE,
    READ_AHEAD,
    BlockingChannel,
    ThreadedConnection,
)
from common.link import (
    COALESCE_BELOW,
    Connection,
    ConnectionClosed,
    Limits,
    NetError,
    PeerRefused,
    PeerTimeout,
)
from common.net import Listener, dial
from common.pki import init_pki
from common.tls import client_context, peer_common_name, server_context
from protocol.errors import FrameTooLarge
from protocol.frames import HEADER, MAX_FRAME_SIZE, Signal, encode_frame
from protocol.jobs import AppendDone, AppendOpen
from protocol.messages import Code, ErrorReply, Hello, decode_message, encode_message
from protocol.records import Record, Stream, decode_batch, encode_batch_frame, encode_batch_parts

T = TypeVar("T")

LIMITS = Limits(frame_timeout=2.0, auth_timeout=5.0, connect_timeout=5.0, tls_handshake_timeout=5.0)
BULK_LIMITS = dataclasses.replace(LIMITS, max_frame_size=BULK_FRAME_SIZE)  # as after authentication
SECRET = "one-time-key"
HELLO = Hello(role="storage", name="sd-a", version="test")
REFUSAL = "sd-b requires TLS and this connection is plain TCP"
WAIT = 5.0  # upper bound for anything a test awaits; every step normally takes milliseconds


# -- fixtures and helpers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Mode:
    """One way to run a bulk connection: TLS contexts for both sides, or None for plain TCP."""

    name: str
    server: ssl.SSLContext | None
    client: ssl.SSLContext | None

    @property
    def tls(self) -> bool:
        return self.server is not None


@dataclass(frozen=True)
class Contexts:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def contexts(tmp_path_factory: pytest.TempPathFactory) -> Contexts:
    """Mutual TLS from a private CA: "a" dials, "b" listens."""
    directory: Path = tmp_path_factory.mktemp("pki")
    certs = init_pki(directory, ["a", "b"], hostnames=["localhost"])
    ca = directory / "ca.pem"
    return Contexts(
        server=server_context(certs["b"].cert, certs["b"].key, ca),
        client=client_context(certs["a"].cert, certs["a"].key, ca),
    )


@pytest.fixture(params=["tls", "plain"])
def mode(request: pytest.FixtureRequest, contexts: Contexts) -> Mode:
    if request.param == "tls":
        return Mode("tls", contexts.server, contexts.client)
    return Mode("plain", None, None)


class Server(Generic[T]):
    """A running Listener; `outcome` is what the (single) handler call returned or raised."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.outcome: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.calls = 0

    @property
    def port(self) -> int:
        return int(self.listener.bound[0].rsplit(":", 1)[1])

    async def result(self, timeout: float = WAIT) -> T:
        return await asyncio.wait_for(self.outcome, timeout)

    async def wait_refused(self, count: int = 1) -> None:
        """The listener counts a refusal after the refused peer may already have seen it."""
        async with asyncio.timeout(WAIT):
            while self.listener.stats.refused < count:
                await asyncio.sleep(0.01)


@asynccontextmanager
async def serving(
    handler: Callable[[Connection], Awaitable[T]],
    ssl_context: ssl.SSLContext | None,
    *,
    accept_bulk: bool = True,
) -> AsyncIterator[Server[T]]:
    """A Listener on 127.0.0.1:0 whose handler's result (or exception) lands in `server.outcome`."""

    async def wrapped(conn: Connection) -> None:
        server.calls += 1
        try:
            value = await handler(conn)
        except Exception as exc:
            await conn.close()
            if not server.outcome.done():
                server.outcome.set_exception(exc)
            raise
        # Closed here, before the test may stop the listener: the listener would close it too, but
        # stopping cancels that close (see test_a_cancelled_close_still_hangs_up).
        await conn.close()
        if not server.outcome.done():
            server.outcome.set_result(value)

    listener = Listener(
        addresses=[("127.0.0.1", 0)],
        handler=wrapped,
        ssl_context=ssl_context,
        limits=LIMITS,
        log=structlog.get_logger(),
        refusal_text=REFUSAL,
        accept_bulk=accept_bulk,
    )
    server: Server[T] = Server(listener)
    listener.bind()
    stop = asyncio.Event()
    task = asyncio.create_task(listener.serve(stop))
    try:
        yield server
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT)
        if not server.outcome.done():
            server.outcome.cancel()


@asynccontextmanager
async def bulk_dial(port: int, ssl_context: ssl.SSLContext | None) -> AsyncIterator[Connection]:
    conn = await dial("127.0.0.1", port, ssl_context, LIMITS, bulk_data=True)
    try:
        yield conn
    finally:
        await conn.close()


async def accept_authenticated(conn: Connection) -> Hello:
    return await authenticate_acceptor(
        conn, lambda hello: SECRET if hello == HELLO else None, failure_delay=0
    )


async def outcome_of(aw: Awaitable[object]) -> object:
    """What an awaitable returned, or the exception it raised (as a value)."""
    try:
        return await aw
    except Exception as exc:
        return exc


def batch_body_size(batch: list[Record]) -> int:
    return sum(len(p) for p in encode_batch_parts(batch))


def make_batches(seed: int) -> list[list[Record]]:
    """40 record batches of varied shapes: empty payloads, small ones, one of 1.5 MB, one that
    makes its frame exactly BULK_FRAME_SIZE long (the largest a bulk connection accepts)."""
    rng = random.Random(seed)
    batches: list[list[Record]] = []
    file_index = 1
    for i in range(40):
        if i == 7:
            sizes = [1_500_000]
        elif i == 23:
            # array32 header (5 bytes) + one record head (16 bytes) + payload == BULK_FRAME_SIZE
            sizes = [BULK_FRAME_SIZE - 5 - 16]
        else:
            sizes = [rng.choice([0, 1, 17, 4096, 65_535, 65_536, 70_000]) for _ in range(i % 6 + 1)]
        batch = []
        for size in sizes:
            stream = Stream.ATTRIBUTES if size < 64 else Stream.DATA
            batch.append(Record(file_index, int(stream), rng.randbytes(size)))
            file_index += 1
        batches.append(batch)
    assert batch_body_size(batches[7]) > MAX_FRAME_SIZE
    assert batch_body_size(batches[23]) == BULK_FRAME_SIZE
    return batches


def plain_records(records: list[Record]) -> list[tuple[int, int, bytes]]:
    return [(r.file_index, r.stream, bytes(r.payload)) for r in records]


# -- 1. a whole stream of batches, both ways ------------------------------------------------------


@dataclass
class Received:
    hello: Hello
    connection_type: type
    tls: bool
    peer_cn: str | None
    frame_sizes: list[int]
    batches: list[list[tuple[int, int, bytes]]]


async def test_record_batches_and_a_reply_cross_a_bulk_connection(mode: Mode) -> None:
    batches = make_batches(seed=1)

    async def handler(conn: Connection) -> Received:
        hello = await accept_authenticated(conn)
        sizes: list[int] = []
        got: list[list[tuple[int, int, bytes]]] = []
        while (event := await conn.recv_event(timeout=WAIT)) is not Signal.EOD:
            assert not isinstance(event, Signal), f"unexpected signal {event!r}"
            sizes.append(len(event))
            got.append(plain_records(decode_batch(event)))
        total = sum(len(r[2]) for b in got for r in b)
        # Written behind: the close() that follows our return must still deliver it.
        await conn.send(AppendDone(code=Code.SD_OK, files=sum(map(len, got)), bytes=total))
        return Received(hello, type(conn), conn.tls, peer_common_name(conn.ssl_object), sizes, got)

    async with serving(handler, mode.server) as server, bulk_dial(server.port, mode.client) as conn:
        assert isinstance(conn, ThreadedConnection)
        assert conn.tls is mode.tls
        assert peer_common_name(conn.ssl_object) == ("b" if mode.tls else None)
        await authenticate_initiator(conn, HELLO, SECRET)
        for batch in batches:
            await conn.send_batch_frame(encode_batch_frame(batch, COALESCE_BELOW))
        # One byte over the bulk limit is refused on the sending side and nothing is sent.
        with pytest.raises(FrameTooLarge):
            await conn.send_raw(bytes(BULK_FRAME_SIZE + 1))
        await conn.send_signal(Signal.EOD)
        reply = await conn.recv_message(timeout=WAIT)
        received = await server.result()

    assert received.hello == HELLO
    assert received.connection_type is ThreadedConnection
    assert received.tls is mode.tls
    assert received.peer_cn == ("a" if mode.tls else None)
    assert received.frame_sizes == [batch_body_size(b) for b in batches]
    assert len(received.batches) == len(batches)
    for i, (sent, got) in enumerate(zip(batches, received.batches, strict=True)):
        assert got == plain_records(sent), f"batch {i} differs"
    n_records = sum(map(len, batches))
    n_bytes = sum(len(r.payload) for b in batches for r in b)
    assert reply == AppendDone(code=Code.SD_OK, files=n_records, bytes=n_bytes)


@pytest.mark.parametrize("read_first", [0, 2], ids=["sink", "after-read-ahead"])
async def test_receive_batches_consumes_in_the_connections_own_thread(
    mode: Mode, read_first: int
) -> None:
    """A restore's batches are consumed where they are received, in order, and the frame that ends
    them is returned; batches `recv_event` had already read ahead come first, in order."""
    batches = make_batches(seed=2)

    async def handler(
        conn: Connection,
    ) -> tuple[list[list[tuple[int, int, bytes]]], set[str], object]:
        await accept_authenticated(conn)
        got: list[list[tuple[int, int, bytes]]] = []
        threads: set[str] = set()
        for _ in range(read_first):
            event = await conn.recv_event(timeout=WAIT)
            assert not isinstance(event, Signal)
            got.append(plain_records(decode_batch(event)))

        def consume(body: bytes | bytearray | memoryview) -> None:
            threads.add(threading.current_thread().name)
            got.append(plain_records(decode_batch(body)))
            kinds.append(type(body))

        kinds: list[type] = []
        end = await conn.receive_batches(consume)
        if not read_first:  # a batch that fits in the buffer of a larger one before it reuses it
            assert memoryview in kinds
        return got, threads, end

    async with serving(handler, mode.server) as server, bulk_dial(server.port, mode.client) as conn:
        await authenticate_initiator(conn, HELLO, SECRET)
        for batch in batches:
            await conn.send_batch_frame(encode_batch_frame(batch, COALESCE_BELOW))
        await conn.send_signal(Signal.EOD)
        got, threads, end = await server.result()

    assert end is Signal.EOD
    assert got == [plain_records(b) for b in batches]
    if not read_first:
        (thread,) = threads  # the connection's one worker thread
        assert thread.startswith("bulk-io")


async def test_a_failing_consumer_ends_receive_batches_with_its_error(mode: Mode) -> None:
    batch = [Record(1, int(Stream.DATA), b"x" * 1000)]
    consumed: list[int] = []

    async def handler(conn: Connection) -> object:
        await accept_authenticated(conn)

        def consume(body: bytes | bytearray) -> None:
            consumed.append(len(body))
            if len(consumed) == 3:
                raise KeyError("the writer broke")

        return await outcome_of(conn.receive_batches(consume))

    async with serving(handler, mode.server) as server, bulk_dial(server.port, mode.client) as conn:
        await authenticate_initiator(conn, HELLO, SECRET)
        for _ in range(5):
            await conn.send_batch_frame(encode_batch_frame(batch, COALESCE_BELOW))
        failure = await server.result()
    assert isinstance(failure, KeyError) and consumed == [consumed[0]] * 3


# -- 2. read-ahead stops after a message or a signal ------------------------------------------------


@pytest.mark.parametrize("batches_before", [0, READ_AHEAD + 2])
@pytest.mark.parametrize("stopper", ["message", "signal"])
async def test_read_ahead_stops_after_a_message_so_the_reply_can_leave(
    mode: Mode, stopper: str, batches_before: int
) -> None:
    """The receiver answers each message (or EOD_POLL) while the sender waits for that answer.

    Were the worker to queue another read after the message, the answer would wait behind that
    read, which only the sender could end: both sides would stall and recv_message would time out.
    """
    rounds = 8
    batch = [Record(1, int(Stream.DATA), b"x" * 1000)]

    async def handler(conn: Connection) -> int:
        await accept_authenticated(conn)
        for n in range(rounds):
            for _ in range(batches_before):
                event = await conn.recv_event(timeout=WAIT)
                assert not isinstance(event, Signal)
                assert plain_records(decode_batch(event)) == plain_records(batch)
            if stopper == "message":
                assert await conn.recv_message(timeout=WAIT) == AppendOpen()
            else:
                assert await conn.recv_event(timeout=WAIT) is Signal.EOD_POLL
            await conn.send(AppendDone(code=Code.SD_OK, files=n, bytes=batches_before))
        # The dialer closes after the last answer.
        closed = await outcome_of(conn.recv_event(timeout=WAIT))
        assert isinstance(closed, ConnectionClosed), closed
        return rounds

    async with serving(handler, mode.server) as server, bulk_dial(server.port, mode.client) as conn:
        await authenticate_initiator(conn, HELLO, SECRET)
        for n in range(rounds):
            for _ in range(batches_before):
                await conn.send_batch_frame(encode_batch_frame(batch, COALESCE_BELOW))
            if stopper == "message":
                await conn.send(AppendOpen())
            else:
                await conn.send_signal(Signal.EOD_POLL)
            reply = await conn.recv_message(timeout=2.0)
            assert reply == AppendDone(code=Code.SD_OK, files=n, bytes=batches_before)
        await conn.close()
        assert await server.result() == rounds


# -- 3. TLS policy ----------------------------------------------------------------------------------


async def test_a_plain_bulk_dial_to_a_tls_listener_is_refused(contexts: Contexts) -> None:
    async def handler(conn: Connection) -> None:
        raise AssertionError("a refused connection must not be served")

    async with serving(handler, contexts.server) as server, bulk_dial(server.port, None) as conn:
        assert not conn.tls
        with pytest.raises(PeerRefused) as info:
            await authenticate_initiator(conn, HELLO, SECRET)
        await server.wait_refused()
        assert info.value.code == Code.TLS_REQUIRED
        assert info.value.step == "tls"
        assert info.value.text == REFUSAL
        assert server.calls == 0


async def test_the_refusal_is_an_error_reply_frame(contexts: Contexts) -> None:
    """What the refused dialer reads first is an ErrorReply naming TLS_REQUIRED."""

    async def handler(conn: Connection) -> None:
        raise AssertionError("a refused connection must not be served")

    async with serving(handler, contexts.server) as server, bulk_dial(server.port, None) as conn:
        await conn.send(HELLO)  # the listener decides on the first byte after the preamble
        reply = await conn.recv(timeout=WAIT)
        assert reply == ErrorReply(code=Code.TLS_REQUIRED, text=REFUSAL)
        await server.wait_refused()
        assert server.calls == 0


async def test_a_tls_bulk_dial_to_a_plain_listener_fails_in_the_tls_step(
    contexts: Contexts,
) -> None:
    async def handler(conn: Connection) -> None:
        raise AssertionError("a refused connection must not be served")

    async with serving(handler, None) as server:
        dialed = await outcome_of(
            dial("127.0.0.1", server.port, contexts.client, LIMITS, bulk_data=True)
        )
        if isinstance(dialed, Connection):
            await dialed.close()
        await server.wait_refused()
        assert isinstance(dialed, NetError), dialed
        assert dialed.step == "tls"
        assert server.calls == 0


# -- 4. the preamble --------------------------------------------------------------------------------


def raw_exchange(port: int, chunks: list[bytes], pause: float = 0.0) -> bytes:
    """Blocking client: send each chunk (pausing between them), half-close, then read until EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        for i, chunk in enumerate(chunks):
            if i and pause:
                time.sleep(pause)
            with contextlib.suppress(ConnectionError):  # the listener may have hung up already
                sock.sendall(chunk)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while data := sock.recv(65536):
                received += data
        return received


@pytest.mark.parametrize("preamble", [b"SRBOGUS!", b"SRDATA/2", b"SRDATA/"])
async def test_a_wrong_preamble_is_refused_and_nothing_is_served(preamble: bytes) -> None:
    async def handler(conn: Connection) -> None:
        raise AssertionError("a refused connection must not be served")

    hello = encode_frame(encode_message(HELLO))  # what a lenient listener would go on to serve
    async with serving(handler, None) as server:
        # The listener closes the connection without a word (recv would time out otherwise).
        assert await asyncio.to_thread(raw_exchange, server.port, [preamble + hello]) == b""
        await server.wait_refused()
        assert server.calls == 0
        assert server.listener.stats.total == 1


async def test_a_preamble_split_across_two_segments_is_still_accepted() -> None:
    """TCP may deliver the 8-byte preamble in pieces; the listener must wait for all of it."""

    async def handler(conn: Connection) -> AppendOpen:
        msg = await conn.recv_message(timeout=WAIT)
        assert isinstance(msg, AppendOpen)
        await conn.send(AppendDone(code=Code.SD_OK, files=0, bytes=0))
        return msg

    frame = encode_frame(encode_message(AppendOpen()))
    async with serving(handler, None) as server:
        received = await asyncio.to_thread(
            raw_exchange, server.port, [DATA_PREAMBLE[:3], DATA_PREAMBLE[3:] + frame], 0.3
        )
        assert server.listener.stats.refused == 0, "a split preamble was refused"
        assert received == encode_frame(
            encode_message(AppendDone(code=Code.SD_OK, files=0, bytes=0))
        )
        assert await server.result() == AppendOpen()


# -- 5 and 8. a peer that breaks off or announces too much --------------------------------------------


def raw_bulk_client(port: int, ssl_context: ssl.SSLContext | None, payload: bytes) -> None:
    """Preamble, TLS if asked, `payload`, then a half-close (FIN, no RST); waits until the server hangs up."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    with sock:
        sock.sendall(DATA_PREAMBLE)
        stream = sock if ssl_context is None else ssl_context.wrap_socket(sock)
        with stream:
            stream.sendall(payload)
            stream.shutdown(socket.SHUT_WR)
            with contextlib.suppress(ConnectionResetError):
                while stream.recv(65536):
                    pass


@pytest.mark.parametrize(
    ("payload", "error", "text"),
    [
        (HEADER.pack(100) + b"0123456789", ConnectionClosed, "mid-frame body"),
        (HEADER.pack(100), ConnectionClosed, "mid-frame body"),
        (HEADER.pack(100)[:2], ConnectionClosed, "mid-frame header"),
        (b"", ConnectionClosed, "closed by peer"),
        # Before authentication a bulk connection has the usual limit, not BULK_FRAME_SIZE.
        (HEADER.pack(MAX_FRAME_SIZE + 1), FrameTooLarge, "exceeds the limit of 1000000 bytes"),
    ],
    ids=["body-cut", "body-missing", "header-cut", "clean-eof", "too-large"],
)
async def test_the_acceptor_reports_a_peer_that_breaks_off(
    mode: Mode, payload: bytes, error: type[Exception], text: str
) -> None:
    async def handler(conn: Connection) -> object:
        assert isinstance(conn, ThreadedConnection)
        return await outcome_of(conn.recv_event(timeout=WAIT))

    if not payload and not mode.tls:
        pytest.skip(
            "a plain bulk connection with no byte after the preamble is refused before serving"
        )
    async with serving(handler, mode.server) as server:
        client = asyncio.create_task(
            asyncio.to_thread(raw_bulk_client, server.port, mode.client, payload)
        )
        outcome = await server.result()
        await asyncio.wait_for(client, WAIT)
    assert isinstance(outcome, error), outcome
    assert text in str(outcome)


@pytest.mark.parametrize(
    ("sent", "text"),
    [
        (HEADER.pack(100) + b"0123456789", "connection closed mid-frame body"),
        (HEADER.pack(100), "connection closed mid-frame body"),
        (HEADER.pack(100)[:3], "connection closed mid-frame header"),
        (encode_frame(b"\x90"), None),  # a whole frame, then a clean EOF
    ],
    ids=["body-cut", "body-missing", "header-cut", "whole-frame"],
)
def test_blocking_channel_names_where_the_peer_closed(sent: bytes, text: str | None) -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(WAIT)
        channel = BlockingChannel(ours, None, BULK_LIMITS)
        theirs.sendall(sent)
        theirs.close()
        if text is None:
            assert channel.recv_event() == b"\x90"
            text = "connection closed by peer"
        with pytest.raises(ConnectionClosed) as info:
            channel.recv_event()
        assert str(info.value) == text
        assert info.value.step == "io"


def test_blocking_channel_skips_heartbeats_and_returns_signals() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(WAIT)
        channel = BlockingChannel(ours, None, BULK_LIMITS)
        theirs.sendall(
            HEADER.pack(Signal.HEARTBEAT)
            + HEADER.pack(0)
            + HEADER.pack(Signal.HEARTBEAT)
            + HEADER.pack(Signal.EOD)
            + encode_frame(b"abc")
        )
        assert channel.recv_event() == b""
        assert channel.recv_event() is Signal.EOD
        assert channel.recv_event() == b"abc"


@pytest.mark.parametrize("announced", [BULK_FRAME_SIZE + 1, 2**31 - 1])
def test_an_oversized_frame_is_refused_before_its_body_is_allocated(announced: int) -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        # Only the header arrives and the peer stays open: reading on would block until the timeout.
        ours.settimeout(WAIT)
        channel = BlockingChannel(ours, None, BULK_LIMITS)
        theirs.sendall(HEADER.pack(announced))
        was_tracing = tracemalloc.is_tracing()  # e.g. under PYTHONTRACEMALLOC
        if not was_tracing:
            tracemalloc.start()
        try:
            before, _peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            started = time.monotonic()
            with pytest.raises(FrameTooLarge) as info:
                channel.recv_event()
            elapsed = time.monotonic() - started
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            if not was_tracing:
                tracemalloc.stop()
    assert (info.value.length, info.value.limit) == (announced, BULK_FRAME_SIZE)
    assert elapsed < 1.0
    assert peak - before < 1024 * 1024, f"{peak - before} bytes allocated for a refused frame"


# -- 6. closing while the worker is blocked in a read ---------------------------------------------


@dataclass(frozen=True)
class Closing:
    elapsed: float  # how long close() took
    pending: object  # what the read left pending during close() ended with
    after: object  # what a read after close() gives


async def block_then_close(conn: Connection) -> Closing:
    """Leave a read pending on a silent peer (the worker blocks in it), then close."""
    pending = asyncio.ensure_future(conn.recv_event())
    await asyncio.sleep(0.2)
    assert not pending.done(), "the peer was meant to be silent"
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(conn.close(), WAIT)
    elapsed = loop.time() - started
    first = await outcome_of(asyncio.wait_for(pending, WAIT))
    after = await outcome_of(conn.recv_event(timeout=WAIT))
    return Closing(elapsed, first, after)


@pytest.mark.parametrize("closer", ["dialer", "acceptor"])
async def test_close_interrupts_a_read_blocked_on_a_silent_peer(mode: Mode, closer: str) -> None:
    async def handler(conn: Connection) -> object:
        await accept_authenticated(conn)
        if closer == "acceptor":
            return await block_then_close(conn)
        return await outcome_of(conn.recv_event(timeout=WAIT))

    async with serving(handler, mode.server) as server, bulk_dial(server.port, mode.client) as conn:
        await authenticate_initiator(conn, HELLO, SECRET)
        if closer == "dialer":
            closing: object = await block_then_close(conn)
            seen_by_peer = await server.result()
            with pytest.raises(ConnectionClosed, match="already closed"):
                await conn.send(AppendOpen())
        else:
            seen_by_peer = await outcome_of(conn.recv_event(timeout=WAIT))
            closing = await server.result()

    assert isinstance(closing, Closing), closing
    assert closing.elapsed < 3.0, f"close() took {closing.elapsed:.2f} s"
    assert isinstance(closing.pending, ConnectionClosed), closing.pending
    assert isinstance(closing.after, ConnectionClosed), closing.after
    # The other side's pending read ends too: it sees the connection closed, not a stall.
    assert isinstance(seen_by_peer, ConnectionClosed), seen_by_peer
    assert "closed by peer" in str(seen_by_peer)


async def test_close_after_a_cancelled_receive_batches_does_not_wait_behind_its_read(
    mode: Mode,
) -> None:
    """A restore's task cancelled while the connection's thread waits for the next batch: that
    thread stays in its read until the close wakes it, so a TERMINATE queued behind it must not
    make the close wait (up to the frame timeout) for a send that cannot leave before it."""

    async def handler(conn: Connection) -> object:
        await accept_authenticated(conn)
        return await outcome_of(conn.recv_event(timeout=WAIT))  # silent until the dialer closes

    async with serving(handler, mode.server) as server, bulk_dial(server.port, mode.client) as conn:
        await authenticate_initiator(conn, HELLO, SECRET)
        receiving = asyncio.create_task(conn.receive_batches(lambda body: None))
        await asyncio.sleep(0.2)  # the thread is in its read
        receiving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await receiving
        started = time.monotonic()
        await conn.close(terminate=True)
        elapsed = time.monotonic() - started
        seen_by_peer = await server.result()
    assert elapsed < 1.0, f"close() took {elapsed:.2f} s"
    assert isinstance(seen_by_peer, ConnectionClosed | Signal), seen_by_peer


# -- 7. a silent peer times out, and the frame that comes later is not lost ------------------------


async def test_recv_timeout_on_a_silent_peer_and_a_late_frame_still_arrives(mode: Mode) -> None:
    go = asyncio.Event()

    async def handler(conn: Connection) -> object:
        await accept_authenticated(conn)
        await asyncio.wait_for(go.wait(), WAIT)
        await conn.send(AppendDone(code=Code.SD_OK, files=1, bytes=2))
        return await outcome_of(conn.recv_event(timeout=WAIT))

    async with serving(handler, mode.server) as server, bulk_dial(server.port, mode.client) as conn:
        await authenticate_initiator(conn, HELLO, SECRET)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(PeerTimeout, match=r"no frame within 0\.2 s"):
            await asyncio.wait_for(conn.recv_event(timeout=0.2), WAIT)
        elapsed = loop.time() - started
        assert 0.15 <= elapsed < 1.5
        with pytest.raises(PeerTimeout):
            await asyncio.wait_for(conn.recv_event(timeout=0.05), WAIT)
        go.set()
        assert await conn.recv_message(timeout=WAIT) == AppendDone(
            code=Code.SD_OK, files=1, bytes=2
        )
        await conn.close()
        assert isinstance(await server.result(), ConnectionClosed)


# -- found while writing these tests: see each docstring --------------------------------------------


async def test_small_frames_then_a_request_are_answered_without_a_delayed_ack_stall(
    mode: Mode,
) -> None:
    """A few small frames, then a request the sender waits on: the request must leave at once.

    Without TCP_NODELAY on the bulk socket, Nagle holds the request back until the previous
    small segment is acknowledged, and the receiver delays that ACK (40 ms on Linux): every such
    round trip then takes ~40 ms instead of well under one. The event loop's own transports
    (StreamConnection) set TCP_NODELAY.
    """
    rounds = 10
    batch = [Record(1, int(Stream.DATA), b"x" * 1000)]

    async def handler(conn: Connection) -> int:
        await accept_authenticated(conn)
        for n in range(rounds):
            for _ in range(5):
                await conn.recv_event(timeout=WAIT)
            await conn.recv_message(timeout=WAIT)
            await conn.send(AppendDone(code=Code.SD_OK, files=n, bytes=0))
        return rounds

    async with serving(handler, mode.server) as server, bulk_dial(server.port, mode.client) as conn:
        await authenticate_initiator(conn, HELLO, SECRET)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for n in range(rounds):
            for _ in range(5):
                await conn.send_batch_frame(encode_batch_frame(batch, COALESCE_BELOW))
            await conn.send(AppendOpen())
            assert await conn.recv_message(timeout=WAIT) == AppendDone(
                code=Code.SD_OK, files=n, bytes=0
            )
        elapsed = loop.time() - started
        assert await server.result() == rounds
    assert elapsed < 0.2, (
        f"{rounds} round trips took {elapsed:.2f} s ({elapsed / rounds * 1000:.0f} ms each)"
    )


async def test_peers_stalled_after_the_preamble_do_not_hold_up_other_connections() -> None:
    """Unauthenticated peers that send the preamble and then nothing must not block anyone else.

    `bulk.accept` waits for them (up to PREAMBLE_TIMEOUT, 30 s) in a thread of the event loop's
    default executor, which has only min(32, CPUs + 4) threads and is shared with every other
    `asyncio.to_thread` of the daemon (bulk dials, volume segments, catalog inserts).
    """
    pool = min(32, (os.cpu_count() or 1) + 4)  # ThreadPoolExecutor's default size

    async def handler(conn: Connection) -> Hello:
        return await accept_authenticated(conn)

    async with serving(handler, None) as server:
        stalled: list[socket.socket] = []
        try:
            for _ in range(pool):
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
                stalled.append(sock)
                sock.sendall(DATA_PREAMBLE)
            await asyncio.sleep(0.3)  # the listener has taken every one of them
            async with asyncio.timeout(1.5), bulk_dial(server.port, None) as conn:
                await authenticate_initiator(conn, HELLO, SECRET)
            assert await server.result() == HELLO
        finally:
            for sock in stalled:
                sock.close()
            await server.wait_refused(pool)


def recv_or_timeout(sock: socket.socket) -> bytes | str:
    try:
        return sock.recv(1)
    except TimeoutError:
        return "timed out"
    except ConnectionResetError:
        return b""


async def test_stopping_the_listener_hangs_up_on_a_bulk_peer_stalled_after_the_preamble() -> None:
    """Once the listener stops, a bulk peer it was still vetting is disconnected at once.

    The listener closes the socket when its task is cancelled, but the thread of `bulk.accept`
    is still blocked in a receive on it (up to PREAMBLE_TIMEOUT, 30 s): the connection stays open
    that long, and the event loop's executor shutdown (daemon exit) waits for that thread.
    """

    async def handler(conn: Connection) -> None:
        raise AssertionError("never authenticated, never served")

    sock: socket.socket | None = None
    try:
        async with serving(handler, None) as server:
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
            sock.sendall(DATA_PREAMBLE)
            await asyncio.sleep(0.3)  # `bulk.accept` is now waiting for the first frame
        sock.settimeout(1.5)
        assert await asyncio.to_thread(recv_or_timeout, sock) == b""
    finally:
        if sock is not None:
            sock.close()


async def test_a_cancelled_close_still_hangs_up(mode: Mode) -> None:
    """close() may be cancelled (the Listener cancels its connection tasks when it stops, and they
    close their connection in a `finally`); the socket must be released all the same.

    Here close() waits to flush frames the silent peer does not read, and is cancelled there:
    `_shutdown` then never interrupts nor closes the socket, `closed` is already True so no later
    close() does either, and the worker stays blocked in sendall. Once the peer reads everything,
    the connection must end (ConnectionClosed), not just go quiet (PeerTimeout). A fixed close may
    drop the unflushed frames, so only the end is checked.
    """
    release = asyncio.Event()
    frames = 3  # written behind (SEND_AHEAD) and more than the loopback socket buffers hold

    async def handler(conn: Connection) -> tuple[int, object]:
        await accept_authenticated(conn)
        await asyncio.wait_for(release.wait(), WAIT)
        received = 0
        while True:
            event = await outcome_of(conn.recv_event(timeout=1.5))
            if isinstance(event, Exception):
                return received, event
            received += 1

    async with serving(handler, mode.server) as server, bulk_dial(server.port, mode.client) as conn:
        try:
            await authenticate_initiator(conn, HELLO, SECRET)
            for _ in range(frames):
                await asyncio.wait_for(conn.send_raw(bytes(BULK_FRAME_SIZE)), WAIT)
            closing = asyncio.create_task(conn.close())
            await asyncio.sleep(0.2)
            assert not closing.done(), "close() was meant to wait for the unread frames"
            closing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await closing
            await conn.close()  # a no-op: the connection already counts as closed
            release.set()
            received, end = await server.result()
        finally:
            # Release what a broken close() left behind, so that it cannot fail later tests.
            assert isinstance(conn, ThreadedConnection)
            conn._channel.interrupt()
            conn._channel.close()
    assert 0 <= received <= frames  # a cancelled close may drop what it had not flushed yet
    assert isinstance(end, ConnectionClosed), end


# -- review findings: pre-authentication limits, deadlines, sticky send errors -----------------------


async def test_a_listener_without_bulk_connections_does_not_take_the_preamble() -> None:
    async def handler(conn: Connection) -> object:
        return await conn.recv_event(timeout=WAIT)

    frame = encode_frame(encode_message(AppendOpen()))
    async with serving(handler, None, accept_bulk=False) as server:
        await asyncio.to_thread(raw_exchange, server.port, [DATA_PREAMBLE + frame], 0.0)
        # Read as a plain frame header, "SRDA" announces ~1.4 GB: refused before anything is allocated.
        with pytest.raises(FrameTooLarge, match="exceeds the limit of 16384 bytes"):  # before auth
            await server.result()


def test_a_trickling_tls_peer_cannot_stretch_the_handshake() -> None:
    ours, theirs = socket.socketpair()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    stop = threading.Event()

    def trickle() -> None:
        with contextlib.suppress(OSError):
            while not stop.wait(0.2):
                theirs.sendall(b"\x16")  # one byte of a ClientHello at a time

    feeder = threading.Thread(target=trickle)
    feeder.start()
    try:
        with ours:
            started = time.monotonic()
            with pytest.raises((TimeoutError, ssl.SSLError)):
                BioTls(ours, ctx, server_side=True).handshake(0.6)
            elapsed = time.monotonic() - started
    finally:
        stop.set()
        feeder.join()
        theirs.close()
    assert elapsed < 1.5, f"the handshake deadline was stretched to {elapsed:.1f} s"


def test_a_body_that_stops_arriving_times_out() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        channel = BlockingChannel(ours, None, dataclasses.replace(LIMITS, frame_timeout=0.3))
        theirs.sendall(HEADER.pack(100) + b"0123456789")
        started = time.monotonic()
        with pytest.raises(PeerTimeout, match=r"no complete frame body within 0\.3 s"):
            channel.recv_event()
        assert time.monotonic() - started < 2.0


def test_after_a_failed_send_no_later_frame_leaves() -> None:
    ours, theirs = socket.socketpair()
    with ours:
        channel = BlockingChannel(ours, None, BULK_LIMITS)
        theirs.close()
        first: ConnectionClosed | None = None
        for _ in range(64):  # the first sends may still fit in the socket buffer
            try:
                channel.send_parts((bytes(1 << 20),))
            except ConnectionClosed as exc:
                first = exc
                break
        assert first is not None
        with pytest.raises(ConnectionClosed) as second:
            channel.send_parts((b"a small frame that must not follow the lost one",))
        assert second.value is first


async def test_unauthenticated_bulk_connections_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "MAX_UNAUTHENTICATED", 1)

    async def handler(conn: Connection) -> object:
        return await conn.recv_event(timeout=WAIT)

    async with serving(handler, None) as server:
        first = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
        second = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
        with first, second:
            first.sendall(DATA_PREAMBLE)  # then silent: it holds the one slot
            await asyncio.sleep(0.3)
            second.sendall(DATA_PREAMBLE)
            assert await asyncio.to_thread(second.recv, 1) == b"", (
                "the second connection was served"
            )
            first.sendall(encode_frame(b"\x90"))
            assert await server.result() == b"\x90"


async def test_receive_batches_returns_the_message_that_ends_them_intact(mode: Mode) -> None:
    """The frame that ends the batches arrives in the buffer the batches were received into; what
    is returned is a copy of its own (bytes, not a view of that buffer), and the connection goes
    on with the next frame."""
    batches = make_batches(seed=3)[:5]

    async def handler(conn: Connection) -> tuple[object, object]:
        await accept_authenticated(conn)
        end = await conn.receive_batches(lambda body: None)
        after = await conn.recv_event(timeout=WAIT)
        return end, after

    async with serving(handler, mode.server) as server, bulk_dial(server.port, mode.client) as conn:
        await authenticate_initiator(conn, HELLO, SECRET)
        for batch in batches:
            await conn.send_batch_frame(encode_batch_frame(batch, COALESCE_BELOW))
        done = AppendDone(code=Code.SD_OK, files=3, bytes=4)
        await conn.send(done)
        await conn.send_batch_frame(encode_batch_frame(batches[0], COALESCE_BELOW))
        end, after = await server.result()

    assert isinstance(end, bytes) and decode_message(end) == done
    assert not isinstance(after, Signal)
    assert plain_records(decode_batch(after)) == plain_records(batches[0])
