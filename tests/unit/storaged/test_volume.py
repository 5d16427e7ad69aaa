"""The volume format: labels, sessions, block checksums, selection by bootstrap, full volumes, torn tails."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.records import Record, Stream
from storaged.appender import VolumeWriter
from storaged.volume import (
    VIEW_MIN,
    BootstrapVolume,
    IndexSelection,
    SessionLabel,
    VolumeCorrupt,
    VolumeError,
    VolumeFull,
    VolumeLabel,
    VolumeReader,
    label_volume,
    read_label,
    select_records,
)


def _label(path: Path, name: str = "Full-0001") -> Path:
    label_volume(path, VolumeLabel(name, "Full", "Backup", "File", 1.0, "test"))
    return path


def _session(sid: int, **kw: object) -> SessionLabel:
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
    return SessionLabel(**base)  # type: ignore[arg-type]


def _write(path: Path, sid: int, count: int, size: int = 100, block_size: int = 4096) -> None:
    writer = VolumeWriter(path, block_size=block_size)
    writer.start_session(_session(sid))
    for i in range(1, count + 1):
        writer.write(sid, 100, Record(i, Stream.ATTRIBUTES, f"attrs{i}".encode()))
        writer.write(sid, 100, Record(i, Stream.DATA, bytes([i % 256]) * size))
    writer.end_session(_session(sid, files=count, status="T"))
    writer.close()


def test_label_round_trip_and_no_relabel(tmp_path: Path) -> None:
    path = _label(tmp_path / "v1")
    assert read_label(path).volume_name == "Full-0001"
    with pytest.raises(VolumeError, match="already exists"):
        _label(path)
    (tmp_path / "junk").write_bytes(b"not a volume")
    with pytest.raises(VolumeError, match="junk"):
        read_label(tmp_path / "junk")


def test_sessions_append_and_read_back(tmp_path: Path) -> None:
    path = _label(tmp_path / "v1")
    _write(path, 1, 50)
    _write(path, 2, 30)  # a second writer continues the block numbering
    reader = VolumeReader(path)
    sessions = list(reader.sessions())
    assert [(s.session_id, s.status) for s in sessions] == [
        (1, None),
        (1, "T"),
        (2, None),
        (2, "T"),
    ]
    numbers = [r.position.block_number for r in reader.records()]
    assert numbers == sorted(numbers)
    data = [r for r in reader.records() if r.file_index > 0 and r.session_id == 2]
    assert len(data) == 60


def test_bootstrap_selects_exact_ranges(tmp_path: Path) -> None:
    path = _label(tmp_path / "v1")
    _write(path, 1, 40)
    _write(path, 2, 40)
    entry = BootstrapVolume("Full-0001", 2, 100, ((3, 5), (20, 20)))
    got = [(r.file_index, r.stream) for _e, r in select_records(VolumeReader(path), [entry])]
    assert got == [(i, s) for i in (3, 4, 5, 20) for s in (Stream.ATTRIBUTES, Stream.DATA)]
    other = BootstrapVolume("Other-0001", 2, 100, ((1, 40),))
    assert list(select_records(VolumeReader(path), [other])) == []


def test_flipped_bit_is_detected_with_its_block(tmp_path: Path) -> None:
    path = _label(tmp_path / "v1")
    _write(path, 1, 60, size=500)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(VolumeCorrupt, match="checksum mismatch") as info:
        list(VolumeReader(path).records())
    assert info.value.block > 0
    assert "Full-0001" not in str(info.value) or "v1" in str(info.value)


def test_torn_tail_is_cut_and_appending_continues(tmp_path: Path) -> None:
    path = _label(tmp_path / "v1")
    _write(path, 1, 10)
    good = path.stat().st_size
    with path.open("ab") as f:
        f.write(b"SRB1\x00\x00")  # a crash in the middle of a block header
    _write(path, 2, 5)
    assert path.stat().st_size > good
    ids = {r.session_id for r in VolumeReader(path).records() if r.file_index > 0}
    assert ids == {1, 2}


def test_damage_in_the_middle_refuses_append(tmp_path: Path) -> None:
    path = _label(tmp_path / "v1")
    _write(path, 1, 60, size=500)
    offsets = sorted({r.position.offset for r in VolumeReader(path).records()})
    raw = bytearray(path.read_bytes())
    raw[offsets[2] : offsets[2] + 4] = b"XXXX"  # the magic of a block in the middle
    path.write_bytes(bytes(raw))
    with pytest.raises(VolumeCorrupt, match="refusing to append"):
        VolumeWriter(path)


def test_maximum_volume_bytes(tmp_path: Path) -> None:
    path = _label(tmp_path / "v1")
    writer = VolumeWriter(path, max_bytes=20_000, block_size=4096)
    writer.start_session(_session(1))
    written = 0
    for i in range(1, 1000):
        try:
            writer.write(1, 100, Record(i, Stream.DATA, b"x" * 1000))
        except VolumeFull:
            break
        written = i
    writer.flush()
    writer.close()
    assert 15 <= written < 1000
    assert path.stat().st_size < 20_000 + 4096 + 1100
    assert max(r.file_index for r in VolumeReader(path).records()) == written


def test_large_payloads_are_views_and_small_ones_copies(tmp_path: Path) -> None:
    # A view keeps its whole block alive: only payloads of at least an eighth of the block are views,
    # so a restore that selects a few small records does not hold whole blocks in memory.
    path = _label(tmp_path / "v1")
    writer = VolumeWriter(path, block_size=64 * 1024)
    writer.start_session(_session(1))
    writer.write(1, 100, Record(1, Stream.ATTRIBUTES, b"a" * 200))
    writer.write(1, 100, Record(1, Stream.DATA, b"d" * 40_000))
    writer.end_session(_session(1, files=1, status="T"))
    writer.close()
    payloads = {r.stream: r.payload for r in VolumeReader(path).records() if r.file_index == 1}
    assert isinstance(payloads[Stream.ATTRIBUTES], bytes)
    assert isinstance(payloads[Stream.DATA], memoryview)
    assert payloads[Stream.ATTRIBUTES] == b"a" * 200
    assert payloads[Stream.DATA] == b"d" * 40_000


def test_a_block_mostly_chosen_is_sent_as_views_and_one_barely_chosen_as_copies(
    tmp_path: Path,
) -> None:
    """A restore of everything keeps every record of a block: payloads of VIEW_MIN bytes or more
    are views (no copy each), shorter ones copies (a view object is larger than they are); a
    restore of a few files copies them all, so no block is kept alive for them (a block is held
    by views of at least an eighth of it)."""
    path = _label(tmp_path / "v1")
    _write(path, 1, 200, size=VIEW_MIN, block_size=64 * 1024)  # 200 small files, a few blocks
    everything = BootstrapVolume("Full-0001", 1, 100, ((1, 200),))
    chosen = [r for _e, r in select_records(VolumeReader(path), [everything])]
    assert len(chosen) == 400
    assert all(isinstance(r.payload, memoryview) for r in chosen if r.stream == Stream.DATA)
    assert all(isinstance(r.payload, bytes) for r in chosen if r.stream == Stream.ATTRIBUTES)
    assert [bytes(r.payload) for r in chosen if r.stream == Stream.DATA] == [
        bytes([i % 256]) * VIEW_MIN for i in range(1, 201)
    ]
    few = BootstrapVolume("Full-0001", 1, 100, ((7, 7), (150, 150)))
    chosen = [r for _e, r in select_records(VolumeReader(path), [few])]
    assert [(r.file_index, r.stream) for r in chosen] == [
        (i, s) for i in (7, 150) for s in (Stream.ATTRIBUTES, Stream.DATA)
    ]
    assert all(isinstance(r.payload, bytes) for r in chosen)
    assert chosen[1].payload == bytes([7]) * VIEW_MIN


def test_block_checksums_are_zlibs_crc32() -> None:
    # The volume format is CRC-32 as zlib computes it; zlib-ng only computes it faster.
    import zlib

    from storaged import volume

    for data, start in ((b"", 0), (b"strongroom", 0), (bytes(range(256)) * 4099, 12345)):
        assert volume._crc32(data, start) == zlib.crc32(data, start)


def test_index_selection_matches_a_linear_scan() -> None:
    ranges = (
        (40, 45),
        (1, 3),
        (7, 7),
        (9, 10),
        (4, 5),
        (44, 50),
    )  # unsorted, adjacent, overlapping
    wanted = IndexSelection(ranges)
    for index in range(-2, 60):
        assert (index in wanted) == any(lo <= index <= hi for lo, hi in ranges), index
    assert wanted.last == 50
    assert IndexSelection(()).last == 0 and 1 not in IndexSelection(())


def test_selection_of_many_ranges_reads_only_those_files(tmp_path: Path) -> None:
    path = _label(tmp_path / "Full-0001")
    _write(path, 1, 300, size=10)
    ranges = tuple((i, i) for i in range(1, 301, 3))
    got = [
        r.file_index
        for _e, r in select_records(
            VolumeReader(path), [BootstrapVolume("Full-0001", 1, 100, ranges)]
        )
    ]
    assert got == [i for i in range(1, 301, 3) for _record in ("attributes", "data")]
