"""Messages and codec: golden byte vectors for every message, strict decoding, a hypothesis round trip."""

from __future__ import annotations

import itertools
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import codec
from protocol.errors import DecodeError
from protocol.messages import (
    MESSAGE_TYPES,
    AuthResult,
    Challenge,
    ChallengeResponse,
    ConnectionCounts,
    ConsoleCommand,
    ConsoleReply,
    DaemonStatus,
    DeviceStatus,
    ErrorReply,
    Hello,
    Message,
    RunningJob,
    StatusRequest,
    decode_message,
    encode_message,
    register,
)

SAMPLES: dict[str, Message] = {
    "hello": Hello(role="console", name="admin", version="0.1.0"),
    "challenge": Challenge(nonce=bytes(range(32))),
    "response": ChallengeResponse(digest=b"\xaa" * 32),
    "auth": AuthResult(code=1000, text="OK"),
    "error": ErrorReply(code=1997, text="TLS is required"),
    "status": StatusRequest(),
    "running_job": RunningJob(
        job_id=7, job="nightly.2026-11-24_01.00.00_07", status="R", files=3, bytes=4096
    ),
    "connections": ConnectionCounts(active=1, total=5, refused=2),
    "daemon_status": DaemonStatus(
        code=3000,
        role="storage",
        name="sd1",
        version="0.1.0",
        pid=42,
        started_at=1.5,
        uptime=2.0,
        addresses=("127.0.0.1:9103",),
        tls=True,
        running_jobs=(RunningJob(job_id=1, job="j", status="R"),),
        connections=ConnectionCounts(active=0, total=0, refused=0),
    ),
    "device_status": DeviceStatus(
        name="FileStorage",
        media_type="File",
        mode="append",
        max_jobs=8,
        reserved_by=("b.1",),
        volumes=("Full-0001",),
        waiting=(
            "r.2 (waiting_for_device device=FileStorage): device 'FileStorage' is appending for b.1",
        ),
    ),
    "command": ConsoleCommand(line="status dir"),
    "reply": ConsoleReply(code=1000, ok=True, text="done", data={"jobs": (1, 2)}, prompt=None),
}

# The bytes every daemon of this protocol version puts on the wire. A change here is a protocol
# change: bump PROTOCOL_VERSION and say so in docs/protocol.md.
GOLDEN: dict[str, str] = {
    "hello": "85a174a568656c6c6fa4726f6c65a7636f6e736f6c65a46e616d65a561646d696ea776657273696f6ea5302e312e30a870726f746f636f6c01",
    "challenge": "82a174a96368616c6c656e6765a56e6f6e6365c420000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    "response": "82a174a8726573706f6e7365a6646967657374c420aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "auth": "83a174a461757468a4636f6465cd03e8a474657874a24f4b",
    "error": "83a174a56572726f72a4636f6465cd07cda474657874af544c53206973207265717569726564",
    "status": "81a174a6737461747573",
    "running_job": "86a174ab72756e6e696e675f6a6f62a66a6f625f696407a36a6f62be6e696768746c792e323032362d31312d32345f30312e30302e30305f3037a6737461747573a152a566696c657303a56279746573cd1000",
    "connections": "84a174ab636f6e6e656374696f6e73a661637469766501a5746f74616c05a77265667573656402",
    "daemon_status": "8ca174ad6461656d6f6e5f737461747573a4636f6465cd0bb8a4726f6c65a773746f72616765a46e616d65a3736431a776657273696f6ea5302e312e30a37069642aaa737461727465645f6174cb3ff8000000000000a6757074696d65cb4000000000000000a961646472657373657391ae3132372e302e302e313a39313033a3746c73c3ac72756e6e696e675f6a6f62739186a174ab72756e6e696e675f6a6f62a66a6f625f696401a36a6f62a16aa6737461747573a152a566696c657300a5627974657300ab636f6e6e656374696f6e7384a174ab636f6e6e656374696f6e73a661637469766500a5746f74616c00a77265667573656400",
    "device_status": "88a174ad6465766963655f737461747573a46e616d65ab46696c6553746f72616765aa6d656469615f74797065a446696c65a46d6f6465a6617070656e64a86d61785f6a6f627308ab72657365727665645f627991a3622e31a7766f6c756d657391a946756c6c2d30303031a777616974696e6791d956722e32202877616974696e675f666f725f646576696365206465766963653d46696c6553746f72616765293a20646576696365202746696c6553746f726167652720697320617070656e64696e6720666f7220622e31",
    "command": "82a174a7636f6d6d616e64a46c696e65aa73746174757320646972",
    "reply": "86a174a57265706c79a4636f6465cd03e8a26f6bc3a474657874a4646f6e65a46461746181a46a6f6273920102a670726f6d7074c0",
}


def test_every_registered_message_has_a_golden_vector() -> None:
    assert set(SAMPLES) == set(GOLDEN)
    for tag in ("hello", "challenge", "response", "auth", "error", "status", "command", "reply"):
        assert tag in MESSAGE_TYPES


@pytest.mark.parametrize("tag", sorted(GOLDEN))
def test_golden_vector(tag: str) -> None:
    msg = SAMPLES[tag]
    assert tag == msg.TYPE
    assert encode_message(msg).hex() == GOLDEN[tag]
    assert decode_message(bytes.fromhex(GOLDEN[tag])) == msg


# A streamed item of a console answer (`.events`): `more` goes on the wire only when true, so the
# plain reply above (and every older peer) is unchanged.
STREAMED_REPLY = ConsoleReply(code=1000, ok=True, text='{"seq": 1}', data={"seq": 1}, more=True)
STREAMED_REPLY_GOLDEN = "87a174a57265706c79a4636f6465cd03e8a26f6bc3a474657874aa7b22736571223a20317da46461746181a373657101a670726f6d7074c0a46d6f7265c3"


def test_streamed_reply_golden_vector_and_more_defaults_off_the_wire() -> None:
    assert encode_message(STREAMED_REPLY).hex() == STREAMED_REPLY_GOLDEN
    assert decode_message(bytes.fromhex(STREAMED_REPLY_GOLDEN)) == STREAMED_REPLY
    plain = SAMPLES["reply"]
    assert isinstance(plain, ConsoleReply)
    assert not plain.more
    assert b"more" not in encode_message(plain)
    explicit = msgpack.packb({"t": "reply", "code": 1000, "ok": True, "text": "", "more": False})
    assert decode_message(explicit) == ConsoleReply(code=1000, ok=True, text="")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"\xc1", "malformed msgpack"),  # a reserved byte
        (msgpack.packb([1, 2]), "expected a map"),
        (msgpack.packb({"x": 1}), "no string type tag"),
        (msgpack.packb({"t": "nope"}), "unknown message type 'nope'"),
        (
            msgpack.packb({"t": "auth", "code": "1000", "text": "OK"}),
            "invalid 'auth' message: code",
        ),
        (msgpack.packb({"t": "auth", "code": 1000}), "invalid 'auth' message: text"),
        (msgpack.packb({"t": "status", "extra": 1}), "invalid 'status' message: extra"),
        (msgpack.packb({"t": "hello", "role": "root", "name": "a", "version": "1"}), "role"),
        (msgpack.packb({"t": "command", "line": "x"}) + b"\x00", "malformed msgpack"),
        (b"", "malformed msgpack"),
    ],
)
def test_bad_bodies_raise_decode_error_naming_the_problem(body: bytes, needle: str) -> None:
    with pytest.raises(DecodeError, match=needle):
        decode_message(body)


def test_codec_keeps_bytes_and_text_apart() -> None:
    value = {"path": b"/tmp/\xff\nname", "text": "caf\u00e9", "n": (1, 2)}
    out = codec.unpack(codec.pack(value))
    assert out == value
    assert isinstance(out["path"], bytes)
    assert isinstance(out["n"], tuple)


def test_codec_refuses_non_string_map_keys() -> None:
    with pytest.raises(DecodeError):
        codec.unpack(msgpack.packb({1: 2}))


def test_register_refuses_a_duplicate_tag() -> None:
    class Impostor(Message):
        TYPE = "hello"

    with pytest.raises(ValueError, match="already used by Hello"):
        register(Impostor)


texts = st.text(max_size=40)
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
running = st.builds(RunningJob, job_id=ints, job=texts, status=texts, files=ints, bytes=ints)
counts = st.builds(ConnectionCounts, active=ints, total=ints, refused=ints)
json_like: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | ints | texts | st.binary(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4).map(tuple) | st.dictionaries(texts, inner, max_size=4)
    ),
    max_leaves=10,
)
messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(
        Hello,
        role=st.sampled_from(["director", "storage", "client", "console"]),
        name=texts,
        version=texts,
        protocol=ints,
    ),
    st.builds(Challenge, nonce=st.binary(max_size=64)),
    st.builds(ChallengeResponse, digest=st.binary(max_size=64)),
    st.builds(AuthResult, code=ints, text=texts),
    st.builds(ErrorReply, code=ints, text=texts),
    st.just(StatusRequest()),
    running,
    counts,
    st.builds(
        DaemonStatus,
        code=ints,
        role=st.sampled_from(["director", "storage", "client"]),
        name=texts,
        version=texts,
        pid=ints,
        started_at=st.floats(allow_nan=False),
        uptime=st.floats(allow_nan=False),
        addresses=st.lists(texts, max_size=3).map(tuple),
        tls=st.booleans(),
        running_jobs=st.lists(running, max_size=3).map(tuple),
        connections=counts,
    ),
    st.builds(ConsoleCommand, line=texts),
    st.builds(
        ConsoleReply,
        code=ints,
        ok=st.booleans(),
        text=texts,
        data=json_like,
        prompt=st.none() | texts,
        more=st.booleans(),
    ),
)


@given(messages)
def test_round_trip(msg: Message) -> None:
    assert decode_message(encode_message(msg)) == msg


@given(
    st.lists(
        st.tuples(
            st.integers(-(2**31), 2**31 - 1), st.integers(0, 2**31 - 1), st.binary(max_size=300)
        ),
        max_size=30,
    )
)
def test_batch_parts_equal_the_msgpack_batch(items: list[tuple[int, int, bytes]]) -> None:
    from protocol.records import Record, decode_batch, encode_batch_parts

    records = [Record(*i) for i in items]
    body = b"".join(encode_batch_parts(records))
    assert decode_batch(body) == records
    assert msgpack.unpackb(body) == [list(i) for i in items]


@given(
    st.lists(
        st.tuples(
            st.integers(-(2**31), 2**31 - 1), st.sampled_from([1, 2, 7]), st.binary(max_size=300)
        ),
        max_size=30,
    ),
    st.integers(1, 400),
)
def test_a_batch_frame_is_the_parts_frame_and_counts_the_job(
    items: list[tuple[int, int, bytes]], join_below: int
) -> None:
    from protocol.frames import HEADER
    from protocol.records import Record, Stream, encode_batch_frame, encode_batch_parts

    records = [Record(*i) for i in items]
    body = b"".join(encode_batch_parts(records))
    frame = encode_batch_frame(records, join_below)
    assert b"".join(frame.parts) == HEADER.pack(len(body)) + body
    assert frame.size == len(body)
    assert frame.files == sum(1 for r in records if r.stream == Stream.ATTRIBUTES)
    assert frame.other_bytes == sum(len(r.payload) for r in records if r.stream != 1)
    # Every piece but the payloads of `join_below` bytes or more is joined with its neighbours:
    # no two short pieces in a row, and every long payload a piece of its own.
    short = [len(p) < join_below for p in frame.parts]
    assert not any(a and b for a, b in itertools.pairwise(short))
    long_payloads = [r.payload for r in records if len(r.payload) >= join_below]
    assert [p for p in frame.parts if any(p is q for q in long_payloads)] == long_payloads


def test_a_batch_frame_longer_than_a_header_can_say_is_refused() -> None:
    import mmap

    from protocol.errors import FrameTooLarge
    from protocol.records import Record, encode_batch_frame

    with (
        mmap.mmap(-1, 2**31) as untouched,  # no page of it is used
        memoryview(untouched) as payload,
        pytest.raises(FrameTooLarge),
    ):
        encode_batch_frame([Record(1, 2, payload)], 64 * 1024)
