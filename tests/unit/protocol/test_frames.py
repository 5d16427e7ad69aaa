"""Framing: every signal, the size boundaries, oversize rejection before allocation, incremental decoding."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import FrameTooLarge, UnknownSignal
from protocol.frames import (
    HEADER_SIZE,
    MAX_FRAME_SIZE,
    Frame,
    FrameDecoder,
    Signal,
    encode_frame,
    encode_signal,
    parse_header,
)


@pytest.mark.parametrize("signal", list(Signal))
def test_every_signal_is_a_bare_negative_header(signal: Signal) -> None:
    wire = encode_signal(signal)
    assert wire == struct.pack(">i", signal.value)
    assert parse_header(wire) is signal
    decoder = FrameDecoder()
    decoder.feed(wire)
    assert decoder.events() == [signal]
    assert decoder.buffered == 0


def test_signal_values_are_stable() -> None:
    # These numbers are on the wire; changing one breaks every deployed daemon.
    assert Signal.EOD == -1
    assert Signal.TERMINATE == -4
    assert Signal.HEARTBEAT == -6
    assert Signal.HB_RESPONSE == -7
    assert len({s.value for s in Signal}) == len(Signal)


def test_unknown_negative_length_is_an_error() -> None:
    with pytest.raises(UnknownSignal) as info:
        parse_header(struct.pack(">i", -8))  # a gap in the signal table
    assert "-8" in str(info.value)
    with pytest.raises(UnknownSignal):
        parse_header(struct.pack(">i", -(2**31)))


@pytest.mark.parametrize("length", [0, 1, MAX_FRAME_SIZE - 1, MAX_FRAME_SIZE])
def test_lengths_up_to_the_limit_are_accepted(length: int) -> None:
    assert parse_header(struct.pack(">i", length)) == length


@pytest.mark.parametrize("length", [MAX_FRAME_SIZE + 1, 2**31 - 1])
def test_oversize_is_rejected_from_the_header_alone(length: int) -> None:
    decoder = FrameDecoder()
    decoder.feed(struct.pack(">i", length))  # no body at all: nothing was allocated for it
    with pytest.raises(FrameTooLarge) as info:
        decoder.next_event()
    assert info.value.length == length
    assert info.value.limit == MAX_FRAME_SIZE


def test_a_smaller_limit_is_honoured_on_both_ends() -> None:
    assert encode_frame(b"x" * 16, max_frame_size=16)
    with pytest.raises(FrameTooLarge):
        encode_frame(b"x" * 17, max_frame_size=16)
    with pytest.raises(FrameTooLarge):
        parse_header(struct.pack(">i", 17), max_frame_size=16)


def test_empty_frame_round_trips() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame(b""))
    assert decoder.events() == [Frame(b"")]


def test_decoder_waits_for_partial_header_and_body() -> None:
    wire = encode_frame(b"hello") + encode_signal(Signal.EOD)
    decoder = FrameDecoder()
    for byte in wire[:-1]:
        decoder.feed(bytes([byte]))
        if decoder.buffered:
            pass
    events = decoder.events()
    assert events == [Frame(b"hello")]
    decoder.feed(wire[-1:])
    assert decoder.events() == [Signal.EOD]


def test_header_size_is_four_bytes_big_endian() -> None:
    assert HEADER_SIZE == 4
    assert encode_frame(b"ab") == b"\x00\x00\x00\x02ab"


@given(
    st.lists(
        st.one_of(st.binary(max_size=300), st.sampled_from(list(Signal))),
        max_size=20,
    ),
    st.integers(min_value=1, max_value=64),
)
def test_any_sequence_survives_any_chunking(items: list[bytes | Signal], chunk: int) -> None:
    wire = b"".join(encode_signal(i) if isinstance(i, Signal) else encode_frame(i) for i in items)
    decoder = FrameDecoder()
    out: list[Frame | Signal] = []
    for start in range(0, len(wire), chunk):
        decoder.feed(wire[start : start + chunk])
        out.extend(decoder.events())
    expected = [i if isinstance(i, Signal) else Frame(i) for i in items]
    assert out == expected
    assert decoder.buffered == 0
