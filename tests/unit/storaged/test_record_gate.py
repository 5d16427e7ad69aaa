"""The Storage Daemon stores only the records a File Daemon produces (#13): the gate alone, and an
append session that meets a refused record (what came before it stays on the volume and in the
catalog; the session ends E)."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.jobs import AttributeBatch, JobMediaReport
from protocol.records import Record, Stream
from storaged import sessions
from storaged import volume as vol
from storaged.record_gate import MAX_FILE_INDEX, RecordGate, RecordRefused
from tests.unit.storaged.test_sessions_pipeline import _assignment, _job, _source


def _file(index: int, *content: Stream) -> list[Record]:
    return [Record(index, Stream.ATTRIBUTES, b"a%d" % index)] + [
        Record(index, stream, b"x") for stream in content
    ]


def _backup() -> list[Record]:
    """Every shape a File Daemon's backup takes: content streams, gaps-free indexes, DELETED."""
    return (
        _file(1)
        + _file(2, Stream.DATA, Stream.DATA, Stream.DIGEST)
        + _file(3, Stream.XATTRS, Stream.ACL_ACCESS, Stream.ACL_DEFAULT, Stream.COMPRESSED_DATA)
        + _file(4, Stream.DATA)
        + [Record(0, Stream.DELETED, b"gone1"), Record(0, Stream.DELETED, b"gone2")]
    )


def test_a_file_daemons_backup_is_admitted_whole_across_batches() -> None:
    records = _backup()
    gate = RecordGate("job.1")
    for start in range(0, len(records), 3):  # batch boundaries inside files
        batch = records[start : start + 3]
        admitted, refused = gate.admit(batch)
        assert refused is None
        assert admitted is batch
    assert gate.admitted == len(records)
    assert gate.last == 4


BAD: list[tuple[str, list[Record], str]] = [
    ("volume label", [Record(-2, Stream.ATTRIBUTES, b"")], "negative file indexes"),
    ("session start label", [Record(-4, 0, b"")], "no File Daemon produces"),
    ("session end label", [Record(-5, Stream.DATA, b"")], "negative file indexes"),
    ("job start", [Record(0, Stream.JOB_START, (7).to_bytes(8, "big"))], "JOB_START"),
    ("unknown stream", [Record(5, 99, b"")], "no File Daemon produces this stream"),
    ("stream 0", [Record(5, 0, b"")], "no File Daemon produces this stream"),
    ("index 0 attributes", [Record(0, Stream.ATTRIBUTES, b"")], "file index 0 is not a file"),
    ("index 0 data", [Record(0, Stream.DATA, b"")], "file index 0 is not a file"),
    ("deleted with an index", [Record(5, Stream.DELETED, b"")], "DELETED records"),
    ("back to an earlier file", [Record(4, Stream.ATTRIBUTES, b"")], "go back"),
    ("data of an earlier file", [Record(3, Stream.DATA, b"")], "go back"),
    ("data before attributes", [Record(6, Stream.DATA, b"")], "before its attributes"),
    ("attributes twice", [Record(5, Stream.ATTRIBUTES, b"")], "already had its attributes"),
    ("beyond 32 bits", [Record(MAX_FILE_INDEX + 1, Stream.ATTRIBUTES, b"")], "end at"),
]


@pytest.mark.parametrize(("what", "bad", "reason"), BAD, ids=[b[0] for b in BAD])
def test_records_no_file_daemon_sends_are_refused(
    what: str, bad: list[Record], reason: str
) -> None:
    gate = RecordGate("web.2024-01-01_00.00.00_07")
    good = _file(5, Stream.DATA)
    batch = good + bad + _file(6)
    admitted, refused = gate.admit(batch)
    assert list(admitted) == good
    assert refused is not None
    assert refused.reason.startswith(reason) or reason in refused.reason
    assert refused.number == len(good) + 1
    text = str(refused)
    assert "Job web.2024-01-01_00.00.00_07" in text
    assert "the File Daemon sent record 3 of the session" in text
    assert f"file index {bad[0].file_index}, stream {bad[0].stream}" in text
    assert "the 2 records before it are kept" in text


def test_the_refusal_counts_records_across_batches() -> None:
    gate = RecordGate("j", sender="Storage Daemon")
    assert gate.admit(_file(1, Stream.DATA))[1] is None
    admitted, refused = gate.admit([Record(-4, Stream.ATTRIBUTES, b"")])
    assert list(admitted) == []
    assert refused is not None and refused.number == 3
    assert "the Storage Daemon sent record 3" in str(refused)
    assert "stream 1 ATTRIBUTES" in str(refused)


async def test_an_append_session_keeps_what_came_before_a_refused_record(tmp_path: Path) -> None:
    assignment = _assignment(1)
    job = _job(tmp_path, assignment)
    seg = await sessions._open_first_segment(job, assignment)
    first = _file(1, Stream.DATA) + _file(2, Stream.DATA)
    second = [*_file(3, Stream.DATA), Record(-5, Stream.ATTRIBUTES, b"forged end label")]
    third = _file(4, Stream.DATA)

    with pytest.raises(RecordRefused, match=r"Job copy\.7: the File Daemon sent record 7"):
        await sessions.append_batches(
            job, seg, _source([first, second, third]), RecordGate(job.name)
        )

    on_volume = [
        (r.file_index, r.stream, bytes(r.payload))
        for r in vol.VolumeReader(tmp_path / assignment.volume_name).records()
    ]
    data = [(i, s, p) for i, s, p in on_volume if i > 0]
    assert data == [(r.file_index, r.stream, bytes(r.payload)) for r in first + second[:2]]
    labels = [i for i, _s, _p in on_volume if i < 0]
    assert labels == [vol.VOL_LABEL, vol.SOS_LABEL, vol.EOS_LABEL]  # no forged label got in
    ends = list(vol.VolumeReader(tmp_path / assignment.volume_name).sessions())
    assert ends[-1].status == "E" and ends[-1].files == 3
    assert (ends[-1].first_index, ends[-1].last_index) == (1, 3)
    cataloged = [i for m in job.told if isinstance(m, AttributeBatch) for i, _s, _p in m.records]
    assert cataloged == [1, 2, 3]
    media = [m for m in job.told if isinstance(m, JobMediaReport)]
    assert [(m.first_index, m.last_index) for m in media] == [(1, 3)]
