"""FrameStream's buffer when its reader lags: unread bytes are moved rarely, and the buffer stays bounded."""

from __future__ import annotations

import asyncio

from common.stream import MIN_FREE, PAUSE_ABOVE, FrameStream
from tests.unit.protocol.test_stream import FakeTransport


class CountingStream(FrameStream):
    def __init__(self) -> None:
        super().__init__()
        self.moved = 0

    def _make_room(self, need: int) -> None:
        self.moved += self._end - self._start
        super()._make_room(need)


def test_a_lagging_reader_costs_at_most_half_a_move_per_byte() -> None:
    async def scenario() -> None:
        stream = CountingStream()
        transport = FakeTransport()
        stream.connection_made(transport)  # type: ignore[arg-type]
        frame_size = 524_312
        frames = [bytes([n % 251]) * frame_size for n in range(64)]
        wire = memoryview(b"".join(frames))
        received = 0
        for frame in frames:
            # The transport delivers until reading pauses (the reader is behind), then one frame is taken.
            while not transport.paused and received < len(wire):
                buf = stream.get_buffer(-1)
                n = min(len(buf), MIN_FREE, len(wire) - received)
                buf[:n] = wire[received : received + n]
                stream.buffer_updated(n)
                received += n
            assert await stream.readexactly(frame_size) == frame
        assert received == len(wire)
        assert stream.moved <= received // 2
        assert len(stream._buf) <= 3 * (PAUSE_ABOVE + frame_size) + 2 * MIN_FREE

    asyncio.run(scenario())
