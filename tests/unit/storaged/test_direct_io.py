"""Volumes through O_DIRECT: the same bytes as buffered I/O, padding cut before anything is
confirmed, a crash's zeroed tail repaired, and the buffered path where the device refuses."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import pytest

from storaged import direct_io
from storaged import volume as vol
from storaged.appender import SessionWriter, VolumeAppender, VolumeWriter, scan_tail
from storaged.direct_io import ALIGN, READ_CHUNK, DirectAppend, DirectReader
from tests.unit.storaged.test_appender import _label, _records, _session


def _direct_or_skip(path: Path) -> None:
    fd = direct_io.open_direct(path, os.O_RDONLY)
    if fd is None:
        pytest.skip(f"the file system of {path} refuses O_DIRECT")
    os.close(fd)


def test_appends_keep_every_byte_before_them(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"head" * 1000 + b"x")  # ends inside a file-system block
    _direct_or_skip(path)
    expected = bytearray(path.read_bytes())
    appender = DirectAppend.open(path, len(expected))
    assert appender is not None
    rng = random.Random(7)
    for size in (
        1,
        ALIGN - 1,
        ALIGN,
        3 * ALIGN + 5,
        3 * 1024 * 1024 + 17,
    ):  # the last grows the buffer
        parts = [rng.randbytes(size // 2), memoryview(rng.randbytes(size - size // 2))]
        appender.write(parts, size)
        expected += b"".join(bytes(p) for p in parts)
        data = path.read_bytes()
        # The file holds the data, then zeros up to the next file-system block.
        assert data[: len(expected)] == expected
        assert data[len(expected) :] == bytes(len(data) - len(expected))
        assert len(data) % ALIGN == 0 and len(data) - len(expected) < ALIGN
        assert appender.padded == (len(expected) % ALIGN != 0)
    appender.close()


def test_a_short_direct_write_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"")
    _direct_or_skip(path)

    def half(fd: int, data: memoryview, offset: int) -> int:
        return os.pwrite(fd, data[: ALIGN // 2], offset) if len(data) > ALIGN // 2 else 0

    appender = DirectAppend.open(path, 0, pwrite=half)
    assert appender is not None
    with pytest.raises(OSError, match="short direct write") as failed:
        appender.write([b"y" * 3 * ALIGN], 3 * ALIGN)
    assert failed.value.errno == errno.EIO
    appender.close()


def test_volume_on_the_direct_path_reads_back_and_ends_at_its_data(tmp_path: Path) -> None:
    path = _label(tmp_path / "v")
    _direct_or_skip(path)
    appender = VolumeAppender(path)
    assert appender._direct is not None
    sessions = [SessionWriter(appender, n, 100 + n, block_size=5000) for n in (1, 2)]
    records = {n: _records(n, 60, size=700) for n in (1, 2)}
    for n, session in enumerate(sessions, 1):
        session.start(_session(n))
    for pair in zip(records[1], records[2], strict=True):  # interleaved blocks of two sessions
        sessions[0].write(pair[0])
        sessions[1].write(pair[1])
    for n, session in enumerate(sessions, 1):
        session.end(_session(n, status="T"))
        # `end` syncs: the file then ends exactly at its last block, nothing to repair.
        assert path.stat().st_size == appender.size
        assert scan_tail(os.open(path, os.O_RDONLY), path)[2] is None
    appender.close()
    for n in (1, 2):
        got = [
            (r.file_index, bytes(r.payload))
            for r in vol.VolumeReader(path).records()
            if r.file_index > 0 and r.session_id == n
        ]
        assert got == [(r.file_index, bytes(r.payload)) for r in records[n]]


def test_a_crash_before_sync_leaves_a_zeroed_tail_that_is_repaired(tmp_path: Path) -> None:
    path = _label(tmp_path / "v")
    _direct_or_skip(path)
    w = VolumeWriter(path, block_size=4096)
    w.start_session(_session(1))
    for record in _records(1, 20, size=300):
        w.write(1, 100, record)
    w.end_session(_session(1, status="T"))
    good_end = w.appender.size
    w.close()
    appender = VolumeAppender(path)
    appender.write_block(2, 200, [b"z" * 1001], 1001)  # a block of a job that never ends
    assert path.stat().st_size > appender.size  # the padding is still there: "the crash"
    os.close(appender._fd)  # no sync, no close: the process died
    fd = os.open(path, os.O_RDONLY)
    try:
        _number, end, repair = scan_tail(fd, path)
    finally:
        os.close(fd)
    assert end == appender.size and repair is not None and repair.reason == "zeroed tail"
    reopened = VolumeAppender(path)  # cuts the zeros; the block of the dead job stays complete
    assert path.stat().st_size == reopened.size == appender.size > good_end
    reopened.close()


def test_a_device_that_refuses_the_alignment_falls_back_to_buffered_writes(tmp_path: Path) -> None:
    path = _label(tmp_path / "v")
    _direct_or_skip(path)

    calls = 0

    def refuse_the_second(fd: int, data: memoryview, offset: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return os.pwrite(fd, data, offset)

    appender = VolumeAppender(path, pwrite=refuse_the_second)
    appender.write_block(1, 100, [b"a" * 5000], 5000)  # direct, padded
    assert appender._direct is not None and path.stat().st_size > appender.size
    appender.write_block(1, 100, [b"b" * 10], 10)  # refused: buffered, after the padding is cut
    assert appender._direct is None
    appender.write_block(1, 100, [b"c" * 7], 7)
    assert path.stat().st_size == appender.size  # no zeros left behind the data
    appender.sync()
    blocks = [data for _h, data in vol.VolumeReader(path).blocks() if data is not None]
    assert blocks[-3:] == [b"a" * 5000, b"b" * 10, b"c" * 7]
    appender.close()
    reopened = VolumeAppender(path)
    assert reopened.repair is None  # nothing to cut: the file ends at its last block
    reopened.close()


def test_direct_reader_reads_seeks_and_stops_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "f"
    data = random.Random(3).randbytes(2 * READ_CHUNK + 12345)
    path.write_bytes(data)
    reader = DirectReader.open(path)
    if reader is None:
        pytest.skip(f"the file system of {path} refuses O_DIRECT")
    with reader:
        assert reader.read(10) == data[:10]
        assert reader.read(READ_CHUNK + 7) == data[10 : READ_CHUNK + 17]  # across a chunk
        reader.seek(5, os.SEEK_CUR)
        assert reader.tell() == READ_CHUNK + 22
        assert reader.read(3) == data[READ_CHUNK + 22 : READ_CHUNK + 25]
        reader.seek(ALIGN + 1)  # back, into an earlier chunk
        assert reader.read(100) == data[ALIGN + 1 : ALIGN + 101]
        reader.seek(len(data) - 5)
        assert reader.read(100) == data[-5:]
        assert reader.read(100) == b""
