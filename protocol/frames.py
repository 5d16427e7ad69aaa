"""Framing: a 4-byte big-endian signed length, then that many bytes; negative lengths are signals."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Final

from protocol.errors import FrameTooLarge, UnknownSignal

HEADER: Final = struct.Struct(">i")
HEADER_SIZE: Final = HEADER.size
# Bareos caps a packet at 1,000,000 bytes including the header; we keep that as the default.
MAX_FRAME_SIZE: Final = 1_000_000


class Signal(enum.IntEnum):
    """Signals travel as a negative length with no body (Bareos `bnet_protocol_signals.h`)."""

    EOD = -1  # end of a list or data stream; more frames may follow
    EOD_POLL = -2  # end of data, and please answer
    STATUS = -3  # request status
    TERMINATE = -4  # the peer is closing the conversation
    POLL = -5  # the peer is waiting on a read
    HEARTBEAT = -6  # keep-alive; receivers ignore it
    HB_RESPONSE = -7  # the only legal reply to a heartbeat
    BTIME = -9  # ask for the peer's time
    BREAK = -10  # stop the current command
    START_SELECT = -11
    END_SELECT = -12
    INVALID_CMD = -13
    CMD_FAILED = -14
    CMD_OK = -15
    CMD_BEGIN = -16
    MSGS_PENDING = -17
    MAIN_PROMPT = -18
    SELECT_INPUT = -19
    WARNING_MSG = -20
    ERROR_MSG = -21
    INFO_MSG = -22
    RUN_CMD = -23
    YESNO = -24
    START_RTREE = -25
    END_RTREE = -26
    SUB_PROMPT = -27
    TEXT_INPUT = -28


_SIGNALS: Final = {s.value: s for s in Signal}


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame's body (possibly empty)."""

    body: bytes


def parse_header(header: bytes, max_frame_size: int = MAX_FRAME_SIZE) -> int | Signal:
    """Return the body length announced by a 4-byte header, or the signal it carries.

    An oversized length is rejected here, before anything is allocated for the body.
    """
    (length,) = HEADER.unpack(header)
    if length < 0:
        signal = _SIGNALS.get(length)
        if signal is None:
            raise UnknownSignal(length)
        return signal
    if length > max_frame_size:
        raise FrameTooLarge(length, max_frame_size)
    return int(length)


def encode_frame(body: bytes, max_frame_size: int = MAX_FRAME_SIZE) -> bytes:
    """Prefix a body with its length; a body above the limit is a programming error."""
    if len(body) > max_frame_size:
        raise FrameTooLarge(len(body), max_frame_size)
    return HEADER.pack(len(body)) + body


def encode_signal(signal: Signal) -> bytes:
    """A signal is just its negative length header."""
    return HEADER.pack(signal.value)


class FrameDecoder:
    """Incremental decoder: feed bytes in, take frames and signals out."""

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        self.max_frame_size = max_frame_size
        self._buffer = bytearray()
        self._pending: int | None = None

    def feed(self, data: bytes) -> None:
        self._buffer += data

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def next_event(self) -> Frame | Signal | None:
        """The next complete frame or signal, or None when more bytes are needed."""
        if self._pending is None:
            if len(self._buffer) < HEADER_SIZE:
                return None
            announced = parse_header(bytes(self._buffer[:HEADER_SIZE]), self.max_frame_size)
            del self._buffer[:HEADER_SIZE]
            if isinstance(announced, Signal):
                return announced
            self._pending = announced
        if len(self._buffer) < self._pending:
            return None
        body = bytes(self._buffer[: self._pending])
        del self._buffer[: self._pending]
        self._pending = None
        return Frame(body)

    def events(self) -> list[Frame | Signal]:
        """Every complete event currently buffered."""
        out: list[Frame | Signal] = []
        while (event := self.next_event()) is not None:
            out.append(event)
        return out
