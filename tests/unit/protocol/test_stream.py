"""FrameStream, the buffered receive path under every Connection, driven by a fake transport."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from common.stream import PAUSE_ABOVE, FrameStream


class FakeTransport:
    def __init__(self) -> None:
        self.paused = False
        self.closing = False
        self.written: list[bytes] = []

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def is_closing(self) -> bool:
        return self.closing

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def writelines(self, parts: Any) -> None:
        self.written.extend(bytes(p) for p in parts)

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def feed(stream: FrameStream, data: bytes, chunk: int = 7000) -> None:
    """Deliver bytes as a transport does: ask for a buffer, fill part of it, report how much."""
    view = memoryview(data)
    while view:
        buf = stream.get_buffer(len(view))
        n = min(len(buf), len(view), chunk)
        buf[:n] = view[:n]
        stream.buffer_updated(n)
        view = view[n:]


def make() -> tuple[FrameStream, FakeTransport]:
    stream = FrameStream()
    transport = FakeTransport()
    stream.connection_made(transport)  # type: ignore[arg-type]
    return stream, transport


def test_frames_cut_anywhere_come_back_whole() -> None:
    async def scenario() -> None:
        stream, _ = make()
        frames = [
            bytes([n % 251]) * size for n, size in enumerate((1, 5, 70_000, 3, 1_500_000, 0, 9))
        ]
        feed(stream, b"".join(frames), chunk=4093)
        for frame in frames:
            assert await stream.readexactly(len(frame)) == frame

    asyncio.run(scenario())


def test_a_reader_waits_until_its_frame_is_complete() -> None:
    async def scenario() -> None:
        stream, _ = make()
        reader = asyncio.ensure_future(stream.readexactly(3_000_000))
        payload = bytes(range(256)) * (3_000_000 // 256) + b"x" * (3_000_000 % 256)
        for start in range(0, len(payload), 300_000):
            assert not reader.done()
            feed(stream, payload[start : start + 300_000])
            await asyncio.sleep(0)
        assert await reader == payload

    asyncio.run(scenario())


def test_end_of_stream_mid_frame_is_an_incomplete_read() -> None:
    async def scenario() -> None:
        stream, _ = make()
        feed(stream, b"abc")
        stream.eof_received()
        with pytest.raises(asyncio.IncompleteReadError) as caught:
            await stream.readexactly(10)
        assert caught.value.partial == b"abc"
        stream.connection_lost(None)
        with pytest.raises(asyncio.IncompleteReadError):
            await stream.readexactly(1)

    asyncio.run(scenario())


def test_reading_pauses_when_the_reader_falls_behind_and_resumes() -> None:
    async def scenario() -> None:
        stream, transport = make()
        feed(stream, b"z" * (PAUSE_ABOVE + 100_000), chunk=1 << 20)
        assert transport.paused
        await stream.readexactly(PAUSE_ABOVE)
        assert not transport.paused

    asyncio.run(scenario())


def test_writes_after_the_connection_went_raise_a_connection_error() -> None:
    async def scenario() -> None:
        stream, transport = make()
        stream.writelines([b"a", b"b"])
        await stream.drain()
        assert transport.written == [b"a", b"b"]
        transport.closing = True
        stream.connection_lost(OSError("reset by peer"))
        with pytest.raises(ConnectionResetError, match="reset by peer"):
            stream.write(b"c")
        with pytest.raises(ConnectionResetError):
            await stream.drain()

    asyncio.run(scenario())


def test_drain_waits_while_the_transport_is_full() -> None:
    async def scenario() -> None:
        stream, _ = make()
        stream.pause_writing()
        drained = asyncio.ensure_future(stream.drain())
        await asyncio.sleep(0)
        assert not drained.done()
        stream.resume_writing()
        await drained

    asyncio.run(scenario())
