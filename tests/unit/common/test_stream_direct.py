"""FrameStream's large frames: received straight into the frame's own buffer, never copied, and a
reader that gives up mid-frame leaves the stream where it was."""

from __future__ import annotations

import asyncio

import pytest

from common.stream import DIRECT_MIN, FrameStream
from tests.unit.protocol.test_stream import feed, make

FRAME = bytes(range(256)) * (3 * DIRECT_MIN // 256) + b"tail"


def test_a_large_frame_is_received_into_the_buffer_handed_out() -> None:
    async def scenario() -> None:
        stream, _ = make()
        feed(stream, FRAME[:1000])  # buffered before the reader asks: copied in once
        reader = asyncio.ensure_future(stream.readexactly(len(FRAME)))
        await asyncio.sleep(0)
        offered = stream.get_buffer(1 << 20)
        assert len(offered) == len(FRAME) - 1000  # exactly the rest: nothing spills past it
        offered[:] = FRAME[1000:]
        stream.buffer_updated(len(offered))
        frame = await reader
        assert isinstance(frame, bytearray) and frame == FRAME
        assert offered.obj is frame  # the transport wrote into the frame itself: no copy

    asyncio.run(scenario())


@pytest.mark.parametrize("chunk", [1, 4093, 70_000, 1 << 20])
def test_frames_around_a_large_one_come_back_whole_whatever_the_cuts(chunk: int) -> None:
    async def scenario() -> None:
        stream, _ = make()
        frames = [b"head", FRAME, b"x" * 9, FRAME[::-1], b"end"]
        wire = b"".join(frames)
        got: list[bytes | bytearray] = []

        async def read_all() -> None:
            for frame in frames:
                got.append(await stream.readexactly(len(frame)))

        reader = asyncio.ensure_future(read_all())
        for start in range(0, len(wire), 50_000):
            feed(stream, wire[start : start + 50_000], chunk=chunk)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        await asyncio.wait_for(reader, 5)
        assert got == frames

    asyncio.run(scenario())


def test_a_reader_that_times_out_mid_frame_leaves_the_bytes_for_the_next_one() -> None:
    async def scenario() -> None:
        stream, _ = make()
        feed(stream, FRAME[:30_000])
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await stream.readexactly(len(FRAME))
        feed(stream, FRAME[30_000:100_000])  # arrives after the reader gave up: shared buffer
        feed(stream, FRAME[100_000:] + b"next")
        assert await stream.readexactly(len(FRAME)) == FRAME
        assert await stream.readexactly(4) == b"next"

    asyncio.run(scenario())


def test_end_of_stream_mid_frame_is_an_incomplete_read_with_what_came() -> None:
    async def scenario() -> None:
        stream, _ = make()
        reader = asyncio.ensure_future(stream.readexactly(len(FRAME)))
        await asyncio.sleep(0)
        feed(stream, FRAME[:5000])
        stream.eof_received()
        with pytest.raises(asyncio.IncompleteReadError) as caught:
            await reader
        assert caught.value.partial == FRAME[:5000]

    asyncio.run(scenario())


def test_until_the_peer_is_authenticated_frames_go_through_the_shared_buffer() -> None:
    async def scenario() -> None:
        stream = FrameStream(guarded=True)
        stream.connection_made(make()[1])  # type: ignore[arg-type]
        reader = asyncio.ensure_future(stream.readexactly(len(FRAME)))
        await asyncio.sleep(0)
        feed(stream, FRAME)
        frame = await reader
        assert frame == FRAME and isinstance(frame, bytes)
        stream.open_up()
        reader = asyncio.ensure_future(stream.readexactly(len(FRAME)))
        await asyncio.sleep(0)
        feed(stream, FRAME)
        frame = await reader
        assert frame == FRAME and isinstance(frame, bytearray)

    asyncio.run(scenario())
