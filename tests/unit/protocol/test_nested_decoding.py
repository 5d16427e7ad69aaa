"""Nested messages are decoded by the field's declared type, never by sniffing a "t" key."""

from __future__ import annotations

from protocol.fileset import FileSetSpec, IncludeSpec, OptionsSpec
from protocol.jobs import BootstrapSpec, FdJobSetup, SdJobSetup, VolumeAssignment
from protocol.messages import ConsoleReply, StatusRequest, decode_message, encode_message


def _round(msg: object) -> object:
    return decode_message(encode_message(msg))  # type: ignore[arg-type]


def test_a_plain_map_with_a_t_key_stays_a_map() -> None:
    reply = ConsoleReply(
        code=1000, ok=True, text="x", data={"t": "status", "rows": [{"t": "hello"}]}
    )
    back = _round(reply)
    assert isinstance(back, ConsoleReply)
    assert back.data == {
        "t": "status",
        "rows": ({"t": "hello"},),
    }  # msgpack arrays arrive as tuples
    assert not isinstance(back.data, StatusRequest)


def test_the_fileset_is_a_typed_message_field() -> None:
    fileset = FileSetSpec(
        name="t", include=(IncludeSpec(files=(b"/t",), options=(OptionsSpec(wild=("t",)),)),)
    )
    setup = FdJobSetup(job_id=1, job="j.1", job_type="B", level="F", fileset=fileset)
    back = _round(setup)
    assert isinstance(back, FdJobSetup) and back.fileset == fileset


def test_declared_nested_messages_still_decode() -> None:
    assignment = VolumeAssignment(
        volume_name="Full-0001", media_id=1, pool_name="Full", pool_type="Backup", media_type="File"
    )
    spec = BootstrapSpec(
        volume_name="Full-0001", session_id=1, session_time=2, file_indexes=((1, 5),)
    )
    setup = SdJobSetup(
        job_id=1,
        job="j.1",
        job_name="j",
        client="c",
        fileset="fs",
        job_type="B",
        level="F",
        device="D",
        media_type="File",
        append=True,
        volume=assignment,
        bootstrap=(spec,),
    )
    back = _round(setup)
    assert isinstance(back, SdJobSetup)
    assert back.volume == assignment and back.bootstrap == (spec,)
