"""One writer per open volume: interleaved sessions, failed writes cut back, torn tails repaired."""

from __future__ import annotations

import errno
import itertools
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from protocol.records import Record, Stream
from storaged import volume as vol
from storaged.appender import (
    SessionWriter,
    VolumeAppender,
    VolumeWriteFailed,
    VolumeWriter,
    scan_tail,
)
from storaged.direct_io import ALIGN


def _label(path: Path, name: str = "Full-0001") -> Path:
    vol.label_volume(path, vol.VolumeLabel(name, "Full", "Backup", "File", 1.0, "test"))
    return path


def _session(sid: int, **kw: object) -> vol.SessionLabel:
    base: dict[str, object] = {
        "job_id": sid,
        "job": f"job.{sid}",
        "job_name": "job",
        "client": "c",
        "fileset": "fs",
        "job_type": "B",
        "level": "F",
        "pool": "Full",
        "session_id": sid,
        "session_time": 100,
        "start_time": 1.0,
    }
    base.update(kw)
    return vol.SessionLabel(**base)  # type: ignore[arg-type]


def _records(sid: int, count: int, size: int = 700) -> list[Record]:
    out: list[Record] = []
    for i in range(1, count + 1):
        out.append(Record(i, Stream.ATTRIBUTES, f"attrs-{sid}-{i}".encode()))
        out.append(Record(i, Stream.DATA, bytes([(sid * 31 + i) % 256]) * size))
    return out


def _entry(name: str, session: SessionWriter, last: int) -> vol.BootstrapVolume:
    assert session.first is not None
    return vol.BootstrapVolume(
        name, session.session_id, session.session_time, ((1, last),), start=session.first
    )


def test_interleaved_sessions_each_read_back_exactly(tmp_path: Path) -> None:
    path = _label(tmp_path / "v")
    label_size = path.stat().st_size
    appender = VolumeAppender(path)
    sessions = [SessionWriter(appender, sid, 100, block_size=4096) for sid in (1, 2, 3)]
    for s in sessions:
        s.start(_session(s.session_id))
    data = {s.session_id: _records(s.session_id, 40) for s in sessions}
    for i in range(80):  # round robin: blocks of the three sessions interleave on the volume
        for s in sessions:
            s.write(data[s.session_id][i])
    for s in sessions:
        s.end(_session(s.session_id, status="T"))
    appender.close()

    reader = vol.VolumeReader(path)
    owners = [r.session_id for r in reader.records() if r.file_index != vol.VOL_LABEL]
    changes = sum(1 for a, b in itertools.pairwise(owners) if a != b)
    assert changes > 10  # really interleaved
    for s in sessions:
        got = [
            (r.file_index, r.stream, bytes(r.payload))
            for _e, r in vol.select_records(reader, [_entry("Full-0001", s, 40)])
        ]
        assert got == [(r.file_index, r.stream, bytes(r.payload)) for r in data[s.session_id]]
        assert (s.first_index, s.last_index, s.files) == (1, 40, 40)
    assert (
        sum(s.written for s in sessions) + label_size == path.stat().st_size
    )  # label + every session's blocks


def test_every_block_names_its_session(tmp_path: Path) -> None:
    path = _label(tmp_path / "v")
    appender = VolumeAppender(path)
    a, b = (
        SessionWriter(appender, 1, 100, block_size=2048),
        SessionWriter(appender, 2, 100, block_size=2048),
    )
    for s in (a, b):
        s.start(_session(s.session_id))
    for rec_a, rec_b in zip(_records(1, 10), _records(2, 10), strict=True):
        a.write(rec_a)
        b.write(rec_b)
    a.end(_session(1))
    b.end(_session(2))
    appender.close()
    with path.open("rb") as f:
        headers = []
        while (h := vol.read_block_header(f, path, None)) is not None:
            headers.append(h)
            f.seek(h.length, os.SEEK_CUR)
    assert headers[0].session == (0, 0)
    for h in headers[1:]:
        data = vol.VolumeReader(path).records(vol.Position(h.number, h.offset))
        assert next(data).session_id == h.session[0]  # type: ignore[index]


def test_threads_appending_at_once_lose_nothing(tmp_path: Path) -> None:
    path = _label(tmp_path / "v")
    appender = VolumeAppender(path)
    sessions = [SessionWriter(appender, sid, 100, block_size=8192) for sid in range(1, 9)]

    def run(s: SessionWriter) -> None:
        s.start(_session(s.session_id))
        for r in _records(s.session_id, 200, size=300):
            s.write(r)
        s.end(_session(s.session_id, status="T"))

    threads = [threading.Thread(target=run, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    appender.close()
    reader = vol.VolumeReader(path)
    for s in sessions:
        got = [
            bytes(r.payload) for _e, r in vol.select_records(reader, [_entry("Full-0001", s, 200)])
        ]
        assert got == [bytes(r.payload) for r in _records(s.session_id, 200, size=300)]


class FailingWritev:
    """os.writev that writes part of the nth call's data, then fails with `err`."""

    def __init__(self, fail_on: int, err: int) -> None:
        self.calls = 0
        self.fail_on = fail_on
        self.err = err

    def __call__(self, fd: int, buffers: Sequence[bytes | memoryview]) -> int:
        self.calls += 1
        if self.calls == self.fail_on:
            os.write(fd, bytes(buffers[0])[:10])  # a short write reached the disk before the error
            raise OSError(self.err, os.strerror(self.err))
        return os.writev(fd, buffers)


class FailingPwrite:
    """os.pwrite (the O_DIRECT path) that writes one file-system block of the nth call's data,
    then fails with `err`."""

    def __init__(self, fail_on: int, err: int) -> None:
        self.calls = 0
        self.fail_on = fail_on
        self.err = err

    def __call__(self, fd: int, data: memoryview, offset: int) -> int:
        self.calls += 1
        if self.calls == self.fail_on:
            os.pwrite(fd, data[:ALIGN], offset)  # a part reached the disk before the error
            raise OSError(self.err, os.strerror(self.err))
        return os.pwrite(fd, data, offset)


def failing_appender(path: Path, fail_on: int, err: int, direct: bool) -> VolumeAppender:
    """An appender whose `fail_on`th block write fails with `err`, on the direct or buffered path."""
    if not direct:
        return VolumeAppender(path, writev=FailingWritev(fail_on, err), direct_io=False)
    appender = VolumeAppender(path, pwrite=FailingPwrite(fail_on, err))
    if appender._direct is None:
        appender.close()
        pytest.skip(f"the file system of {path} refuses O_DIRECT")
    return appender


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "buffered"])
@pytest.mark.parametrize(("err", "status"), [(errno.ENOSPC, "Full"), (errno.EIO, "Error")])
def test_failed_write_cuts_back_and_keeps_the_block(
    tmp_path: Path, err: int, status: str, direct: bool
) -> None:
    path = _label(tmp_path / "v")
    appender = failing_appender(path, 4, err, direct)
    session = SessionWriter(appender, 1, 100, block_size=4096)
    session.start(_session(1))
    records = _records(1, 30)
    leftover: list[Record] = []
    failure: VolumeWriteFailed | None = None
    for n, record in enumerate(records):
        try:
            session.write(record)
        except VolumeWriteFailed as exc:
            failure = exc
            leftover = session.unwritten() + records[n:]
            break
    assert failure is not None and failure.status == status, (
        "the fourth block write should have failed"
    )
    good_end = appender.size
    assert path.stat().st_size == good_end  # the partial block was cut off
    assert appender.status == status
    with pytest.raises(VolumeWriteFailed):
        appender.write_block(1, 100, [b"x"], 1)
    appender.close()
    # Everything before the failed block reads back; together with the leftover it is the whole stream.
    written = [r for r in vol.VolumeReader(path).records() if r.file_index > 0]
    assert [(r.file_index, r.stream) for r in written] + [
        (r.file_index, r.stream) for r in leftover
    ] == [(r.file_index, r.stream) for r in records]


def test_zeroed_tail_is_cut_off(tmp_path: Path) -> None:
    path = _label(tmp_path / "v")
    w = VolumeWriter(path, block_size=4096)
    w.start_session(_session(1))
    for r in _records(1, 20):
        w.write(1, 100, r)
    w.end_session(_session(1, status="T"))
    w.close()
    good = path.stat().st_size
    with path.open("ab") as f:
        f.write(bytes(10_000))  # the file grew but its data never reached the disk
    appender = VolumeAppender(path)
    assert appender.repair is not None and appender.repair.reason == "zeroed tail"
    assert appender.size == good == path.stat().st_size
    appender.close()


def test_torn_last_block_with_bad_checksum_is_cut_off(tmp_path: Path) -> None:
    path = _label(tmp_path / "v")
    w = VolumeWriter(path, block_size=4096)
    w.start_session(_session(1))
    for r in _records(1, 20):
        w.write(1, 100, r)
    w.end_session(_session(1, status="T"))
    w.close()
    offsets = sorted({r.position.offset for r in vol.VolumeReader(path).records()})
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF  # the last block's data: a write that did not complete
    path.write_bytes(bytes(raw))
    fd = os.open(path, os.O_RDONLY)
    try:
        number, end, repair = scan_tail(fd, path)
    finally:
        os.close(fd)
    assert repair is not None and "checksum" in repair.reason
    assert end == offsets[-1]
    assert number == len(offsets) - 1


def test_damage_before_good_blocks_refuses_append(tmp_path: Path) -> None:
    path = _label(tmp_path / "v")
    w = VolumeWriter(path, block_size=4096)
    w.start_session(_session(1))
    for r in _records(1, 40):
        w.write(1, 100, r)
    w.end_session(_session(1, status="T"))
    w.close()
    offsets = sorted({r.position.offset for r in vol.VolumeReader(path).records()})
    raw = bytearray(path.read_bytes())
    raw[offsets[2] : offsets[2] + 24] = bytes(24)  # a zeroed header with good blocks after it
    path.write_bytes(bytes(raw))
    with pytest.raises(vol.VolumeCorrupt, match="refusing to append"):
        VolumeAppender(path)


def test_session_not_where_jobmedia_says_is_an_error(tmp_path: Path) -> None:
    path = _label(tmp_path / "v")
    appender = VolumeAppender(path)
    a, b = (
        SessionWriter(appender, 1, 100, block_size=4096),
        SessionWriter(appender, 2, 100, block_size=4096),
    )
    for s in (a, b):
        s.start(_session(s.session_id))
        for r in _records(s.session_id, 10):
            s.write(r)
        s.end(_session(s.session_id, status="T"))
    appender.close()
    reader = vol.VolumeReader(path)
    assert b.first is not None
    wrong = vol.BootstrapVolume(
        "Full-0001", 1, 100, ((1, 10),), start=b.first
    )  # session 1 at session 2's block
    with pytest.raises(vol.VolumeError, match="session 2/100, not 1/100"):
        list(vol.select_records(reader, [wrong]))
    missing = vol.BootstrapVolume("Full-0001", 9, 100, ((1, 10),))
    with pytest.raises(vol.VolumeError, match="session 9/100 is not where the catalog"):
        list(vol.select_records(reader, [missing]))


def test_volumes_are_created_private(tmp_path: Path) -> None:
    path = _label(tmp_path / "v")
    assert path.stat().st_mode & 0o777 == 0o600


def test_format_1_volumes_stay_readable(tmp_path: Path) -> None:
    """A volume written by format 1 (SRB1 blocks, no session in the header) reads as before."""
    import struct

    def block(number: int, data: bytes) -> bytes:
        crc = vol._crc32(data, vol._crc32(struct.pack(">II", number, len(data))))
        return vol.BLOCK_HEADER_V1.pack(vol.BLOCK_MAGIC_V1, number, len(data), crc) + data

    def record(sid: int, index: int, stream: int, payload: bytes) -> bytes:
        return vol.RECORD_HEADER.pack(sid, 100, index, stream, len(payload)) + payload

    label = vol._pack_label(
        vol.VolumeLabel("Old-0001", "Full", "Backup", "File", 1.0, "old", format_version=1)
    )
    path = tmp_path / "Old-0001"
    path.write_bytes(
        block(0, record(0, vol.VOL_LABEL, 0, label))
        + block(
            1,
            record(5, vol.SOS_LABEL, 0, vol._pack_label(_session(5)))
            + record(5, 1, Stream.ATTRIBUTES, b"a1")
            + record(5, 1, Stream.DATA, b"old data"),
        )
        + block(2, record(5, vol.EOS_LABEL, 0, vol._pack_label(_session(5, status="T"))))
    )
    reader = vol.VolumeReader(path)
    assert reader.label.format_version == 1
    entry = vol.BootstrapVolume("Old-0001", 5, 100, ((1, 1),), start=vol.Position(1, 1))
    offsets = sorted({r.position.offset for r in reader.records()})
    entry = vol.BootstrapVolume("Old-0001", 5, 100, ((1, 1),), start=vol.Position(1, offsets[1]))
    assert [bytes(r.payload) for _e, r in vol.select_records(reader, [entry])] == [
        b"a1",
        b"old data",
    ]
    # Appending to it continues with format-2 blocks after the old ones.
    w = VolumeWriter(path, block_size=4096)
    w.start_session(_session(6))
    w.write(6, 100, Record(1, Stream.DATA, b"new data"))
    w.end_session(_session(6, status="T"))
    w.close()
    assert {r.session_id for r in vol.VolumeReader(path).records() if r.file_index > 0} == {5, 6}
