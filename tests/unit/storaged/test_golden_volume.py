"""Golden bytes of the volume format: a label block, session label blocks, a data block, and a
format-1 volume that must stay readable.

Volumes outlive the code that wrote them, so these bytes may never change by accident: a changed
vector is a volume format change (a new FORMAT_VERSION and block magic, docs/volume-format.md).
Every time field is fixed through the label dataclasses, so writing is deterministic.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from protocol.attributes import FileAttributes, FileType, encode_attributes
from protocol.records import Record, Stream, pack_data
from storaged.appender import VolumeWriter
from storaged.volume import (
    EOS_LABEL,
    FORMAT_VERSION,
    SOS_LABEL,
    VOL_LABEL,
    BootstrapVolume,
    Position,
    SessionLabel,
    VolumeLabel,
    VolumeReader,
    label_volume,
    read_label,
    select_records,
)

LABEL = VolumeLabel(
    volume_name="Full-0007",
    pool_name="Full",
    pool_type="Backup",
    media_type="File",
    label_time=1_773_526_200.5,
    label_program="strongroom-sd 0.1.0",
)
SESSION_ID, SESSION_TIME = 17, 1_773_526_000
START = SessionLabel(
    job_id=42,
    job="BackupCatalog.2026-03-14_23.10.00_42",
    job_name="BackupCatalog",
    client="web1-fd",
    fileset="LinuxAll",
    job_type="B",
    level="F",
    pool="Full",
    session_id=SESSION_ID,
    session_time=SESSION_TIME,
    start_time=1_773_526_260.25,
)
END = SessionLabel(
    job_id=42,
    job="BackupCatalog.2026-03-14_23.10.00_42",
    job_name="BackupCatalog",
    client="web1-fd",
    fileset="LinuxAll",
    job_type="B",
    level="F",
    pool="Full",
    session_id=SESSION_ID,
    session_time=SESSION_TIME,
    start_time=1_773_526_260.25,
    end_time=1_773_526_261.75,
    files=1,
    bytes=23,
    status="T",
    first_index=1,
    last_index=1,
)
ATTRS = FileAttributes(
    path=b"/home/ren\xe9e/a",
    type=FileType.REGULAR,
    mode=0o100644,
    uid=1000,
    gid=100,
    size=15,
    atime_ns=1_773_526_100_000_000_000,
    mtime_ns=1_773_526_000_000_000_001,
    ctime_ns=1_773_526_000_000_000_002,
    ino=4242,
    dev=2049,
)
DATA = (
    Record(1, Stream.ATTRIBUTES, encode_attributes(ATTRS)),
    Record(1, Stream.DATA, pack_data(0, b"hello, \xff world")),
)

# Block 0: the volume label, alone (session 0/0).
LABEL_BLOCK = (
    "5352423200000000000000a1000000000000000067da88120000000000000000fffffffe000000000000008d87ab766f"
    "6c756d655f6e616d65a946756c6c2d30303037a9706f6f6c5f6e616d65a446756c6ca9706f6f6c5f74797065a6426163"
    "6b7570aa6d656469615f74797065a446696c65aa6c6162656c5f74696d65cb41da6d772e200000ad6c6162656c5f7072"
    "6f6772616db37374726f6e67726f6f6d2d736420302e312e30ae666f726d61745f76657273696f6e02"
)
# Block 1: the session's start label (a session starts in a block of its own here, flushed).
START_BLOCK = (
    "5352423200000001000001080000001169b5dbf0651725830000001169b5dbf0fffffffc00000000000000f4de0011a6"
    "6a6f625f69642aa36a6f62d9244261636b7570436174616c6f672e323032362d30332d31345f32332e31302e30305f34"
    "32a86a6f625f6e616d65ad4261636b7570436174616c6f67a6636c69656e74a7776562312d6664a766696c65736574a8"
    "4c696e7578416c6ca86a6f625f74797065a142a56c6576656ca146a4706f6f6ca446756c6caa73657373696f6e5f6964"
    "11ac73657373696f6e5f74696d65ce69b5dbf0aa73746172745f74696d65cb41da6d773d100000a8656e645f74696d65"
    "c0a566696c657300a5627974657300a6737461747573c0ab66697273745f696e64657800aa6c6173745f696e64657800"
)
# Block 2: one session's two data records (attributes, then data at offset 0).
DATA_BLOCK = (
    "5352423200000002000000830000001169b5dbf004e9dacd0000001169b5dbf0000000010000000100000045dc001301"
    "c40d2f686f6d652f72656ee9652f6101cd81a4cd03e8640fcf189cd49766624800cf189cd4801deb6001cf189cd4801d"
    "eb600201cd0801cd109200c40000a0c2a00000001169b5dbf0000000010000000200000016000000000000000068656c"
    "6c6f2c20ff20776f726c64"
)
# Block 3: the end-of-session label.
END_BLOCK = (
    "5352423200000003000001110000001169b5dbf0967808b10000001169b5dbf0fffffffb00000000000000fdde0011a6"
    "6a6f625f69642aa36a6f62d9244261636b7570436174616c6f672e323032362d30332d31345f32332e31302e30305f34"
    "32a86a6f625f6e616d65ad4261636b7570436174616c6f67a6636c69656e74a7776562312d6664a766696c65736574a8"
    "4c696e7578416c6ca86a6f625f74797065a142a56c6576656ca146a4706f6f6ca446756c6caa73657373696f6e5f6964"
    "11ac73657373696f6e5f74696d65ce69b5dbf0aa73746172745f74696d65cb41da6d773d100000a8656e645f74696d65"
    "cb41da6d773d700000a566696c657301a5627974657317a6737461747573a154ab66697273745f696e64657801aa6c61"
    "73745f696e64657801"
)

# A format-1 volume (SRB1 headers, no session in the header): label block, then one block holding
# a whole session. Written by earlier releases; still read.
V1_LABEL = VolumeLabel(
    volume_name="Old-0001",
    pool_name="Full",
    pool_type="Backup",
    media_type="File",
    label_time=1_700_000_000.0,
    label_program="strongroom-sd 0.0.9",
    format_version=1,
)
V1_START = SessionLabel(
    job_id=5,
    job="Old.2023-11-14_22.13.20_05",
    job_name="Old",
    client="web1-fd",
    fileset="LinuxAll",
    job_type="B",
    level="F",
    pool="Full",
    session_id=5,
    session_time=1_699_999_000,
    start_time=1_700_000_100.0,
)
V1_END = SessionLabel(
    job_id=5,
    job="Old.2023-11-14_22.13.20_05",
    job_name="Old",
    client="web1-fd",
    fileset="LinuxAll",
    job_type="B",
    level="F",
    pool="Full",
    session_id=5,
    session_time=1_699_999_000,
    start_time=1_700_000_100.0,
    end_time=1_700_000_101.0,
    files=1,
    bytes=2,
    status="T",
    first_index=1,
    last_index=1,
)
V1_VOLUME = (
    "5352423100000000000000a0a3cfbfe60000000000000000fffffffe000000000000008c87ab766f6c756d655f6e616d"
    "65a84f6c642d30303031a9706f6f6c5f6e616d65a446756c6ca9706f6f6c5f74797065a64261636b7570aa6d65646961"
    "5f74797065a446696c65aa6c6162656c5f74696d65cb41d954fc40000000ad6c6162656c5f70726f6772616db3737472"
    "6f6e67726f6f6d2d736420302e302e39ae666f726d61745f76657273696f6e01535242310000000100000223b9e8cf7f"
    "000000056553ed18fffffffc00000000000000dfde0011a66a6f625f696405a36a6f62ba4f6c642e323032332d31312d"
    "31345f32322e31332e32305f3035a86a6f625f6e616d65a34f6c64a6636c69656e74a7776562312d6664a766696c6573"
    "6574a84c696e7578416c6ca86a6f625f74797065a142a56c6576656ca146a4706f6f6ca446756c6caa73657373696f6e"
    "5f696405ac73657373696f6e5f74696d65ce6553ed18aa73746172745f74696d65cb41d954fc59000000a8656e645f74"
    "696d65c0a566696c657300a5627974657300a6737461747573c0ab66697273745f696e64657800aa6c6173745f696e64"
    "657800000000056553ed180000000100000001000000026131000000056553ed1800000001000000020000000a000000"
    "00000000006f6b000000056553ed18fffffffb00000000000000e8de0011a66a6f625f696405a36a6f62ba4f6c642e32"
    "3032332d31312d31345f32322e31332e32305f3035a86a6f625f6e616d65a34f6c64a6636c69656e74a7776562312d66"
    "64a766696c65736574a84c696e7578416c6ca86a6f625f74797065a142a56c6576656ca146a4706f6f6ca446756c6caa"
    "73657373696f6e5f696405ac73657373696f6e5f74696d65ce6553ed18aa73746172745f74696d65cb41d954fc590000"
    "00a8656e645f74696d65cb41d954fc59400000a566696c657301a5627974657302a6737461747573a154ab6669727374"
    "5f696e64657801aa6c6173745f696e64657801"
)


def _split_blocks(data: bytes) -> list[bytes]:
    """A format-2 volume's blocks, cut by the data length in each 24-byte header."""
    blocks, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos + 8)
        blocks.append(data[pos : pos + 24 + length])
        pos += 24 + length
    return blocks


def _write_volume(path: Path) -> None:
    label_volume(path, LABEL)
    writer = VolumeWriter(path)
    writer.start_session(START)
    writer.flush()
    for record in DATA:
        writer.write(SESSION_ID, SESSION_TIME, record)
    writer.flush()
    writer.end_session(END)
    writer.close()


def test_label_block_golden(tmp_path: Path) -> None:
    path = tmp_path / "Full-0007"
    label_volume(path, LABEL)
    assert path.read_bytes().hex() == LABEL_BLOCK
    assert read_label(path) == LABEL
    assert LABEL.format_version == FORMAT_VERSION == 2


def test_session_blocks_golden(tmp_path: Path) -> None:
    path = tmp_path / "Full-0007"
    _write_volume(path)
    blocks = [b.hex() for b in _split_blocks(path.read_bytes())]
    assert blocks == [LABEL_BLOCK, START_BLOCK, DATA_BLOCK, END_BLOCK]


def test_golden_volume_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "Full-0007"
    path.write_bytes(bytes.fromhex(LABEL_BLOCK + START_BLOCK + DATA_BLOCK + END_BLOCK))
    reader = VolumeReader(path)
    assert reader.label == LABEL
    assert list(reader.sessions()) == [START, END]
    got = [
        (r.session_id, r.session_time, r.file_index, r.stream, bytes(r.payload), r.position)
        for r in reader.records()
    ]
    label_size, start_size = len(LABEL_BLOCK) // 2, len(START_BLOCK) // 2
    data_at = Position(2, label_size + start_size)
    assert [g[:4] for g in got] == [
        (0, 0, VOL_LABEL, 0),
        (SESSION_ID, SESSION_TIME, SOS_LABEL, 0),
        (SESSION_ID, SESSION_TIME, 1, Stream.ATTRIBUTES),
        (SESSION_ID, SESSION_TIME, 1, Stream.DATA),
        (SESSION_ID, SESSION_TIME, EOS_LABEL, 0),
    ]
    assert [g[4] for g in got[2:4]] == [bytes(r.payload) for r in DATA]
    assert [g[5] for g in got] == [
        Position(0, 0),
        Position(1, label_size),
        data_at,
        data_at,
        Position(3, data_at.offset + len(DATA_BLOCK) // 2),
    ]
    entry = BootstrapVolume(
        "Full-0007", SESSION_ID, SESSION_TIME, ((1, 1),), start=Position(1, label_size)
    )
    assert [record for _entry, record in select_records(reader, [entry])] == list(DATA)


def _v1_block(number: int, data: bytes) -> bytes:
    """A format-1 block as docs/volume-format.md describes it (built here, not by storaged)."""
    crc = zlib.crc32(data, zlib.crc32(struct.pack(">II", number, len(data))))
    return b"SRB1" + struct.pack(">III", number, len(data), crc) + data


def _v1_record(
    session_id: int, session_time: int, index: int, stream: int, payload: bytes
) -> bytes:
    return struct.pack(">IIiiI", session_id, session_time, index, stream, len(payload)) + payload


def test_format_1_volume_golden_matches_the_documented_layout() -> None:
    from storaged.volume import _pack_label  # the label payload: a msgpack map of the dataclass

    sid, stime = V1_START.session_id, V1_START.session_time
    built = _v1_block(0, _v1_record(0, 0, VOL_LABEL, 0, _pack_label(V1_LABEL))) + _v1_block(
        1,
        _v1_record(sid, stime, SOS_LABEL, 0, _pack_label(V1_START))
        + _v1_record(sid, stime, 1, Stream.ATTRIBUTES, b"a1")
        + _v1_record(sid, stime, 1, Stream.DATA, pack_data(0, b"ok"))
        + _v1_record(sid, stime, EOS_LABEL, 0, _pack_label(V1_END)),
    )
    assert built.hex() == V1_VOLUME


def test_format_1_volume_stays_readable(tmp_path: Path) -> None:
    path = tmp_path / "Old-0001"
    path.write_bytes(bytes.fromhex(V1_VOLUME))
    reader = VolumeReader(path)
    assert reader.label == V1_LABEL
    assert list(reader.sessions()) == [V1_START, V1_END]
    records = [
        (r.session_id, r.file_index, r.stream, bytes(r.payload), r.position.block_number)
        for r in reader.records()
        if r.file_index > 0
    ]
    assert records == [
        (5, 1, Stream.ATTRIBUTES, b"a1", 1),
        (5, 1, Stream.DATA, pack_data(0, b"ok"), 1),
    ]
    block_1 = next(r.position for r in reader.records() if r.file_index == SOS_LABEL)
    entry = BootstrapVolume("Old-0001", 5, 1_699_999_000, ((1, 1),), start=block_1)
    assert [bytes(r.payload) for _e, r in select_records(reader, [entry])] == [
        b"a1",
        pack_data(0, b"ok"),
    ]
