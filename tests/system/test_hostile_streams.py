"""A hostile File Daemon against the real Storage Daemon (#13): it authenticates with the job's
one-time key over TLS with the client's certificate, then sends records no File Daemon sends. The
job ends E with a message naming the job, the record and the reason; what came before the bad
record stays on the volume and in the catalog; no forged label gets onto the volume."""

from __future__ import annotations

import pytest

from protocol.frames import Signal
from protocol.jobs import AppendDone, AppendOpen, AttributeBatch, JobMessage, Ok
from protocol.messages import ErrorReply
from protocol.records import Record, Stream, encode_batch
from storaged import volume as vol
from tests.system.conftest import Installation
from tests.system.sd_peers import data_session, sd_job


def _file(index: int, size: int = 3000) -> list[Record]:
    return [
        Record(index, Stream.ATTRIBUTES, b"attributes of %d" % index),
        Record(index, Stream.DATA, (0).to_bytes(8, "big") + bytes([index % 256]) * size),
        Record(index, Stream.DIGEST, b"digest of %d" % index),
    ]


def _on_volume(inst: Installation, volume: str) -> list[tuple[int, int, bytes]]:
    path = inst.layout.storage_dir / volume
    return [(r.file_index, r.stream, bytes(r.payload)) for r in vol.VolumeReader(path).records()]


def _plain(records: list[Record]) -> list[tuple[int, int, bytes]]:
    return [(r.file_index, r.stream, bytes(r.payload)) for r in records]


async def test_a_file_daemons_stream_is_stored_whole(installation: Installation) -> None:
    inst = installation
    good = _file(1) + _file(2) + [Record(0, Stream.DELETED, b"accurate: gone")]
    async with sd_job(inst) as job:
        data = await data_session(inst, job, inst.layout.client)
        try:
            await data.send(AppendOpen())
            assert isinstance(await data.recv_message(timeout=30), Ok)
            await data.send_raw(encode_batch(good))
            await data.send_signal(Signal.EOD)
            done = await data.recv_message(timeout=30)
            assert isinstance(done, AppendDone) and done.files == 2, done
        finally:
            await data.close(terminate=True)
        end = await job.end()
    assert end.status == "T", end
    stored = [entry for entry in _on_volume(inst, job.volume) if entry[0] > 0]
    assert stored == _plain(good[:-1])  # DELETED goes to the catalog only


HOSTILE = [
    ("volume label", Record(vol.VOL_LABEL, Stream.ATTRIBUTES, b"forged"), "negative file indexes"),
    ("end of session", Record(vol.EOS_LABEL, Stream.ATTRIBUTES, b"forged"), "volume's own labels"),
    ("job start", Record(0, Stream.JOB_START, (1).to_bytes(8, "big")), "JOB_START records"),
    ("unknown stream", Record(3, 42, b"?"), "no File Daemon produces this stream"),
    ("index back", Record(1, Stream.ATTRIBUTES, b"again"), "file indexes go back"),
]


@pytest.mark.parametrize(("what", "bad", "reason"), HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_records_no_file_daemon_sends_end_the_job(
    installation: Installation, what: str, bad: Record, reason: str
) -> None:
    inst = installation
    first = _file(1) + _file(2)
    second = [*_file(3)[:1], bad, *_file(4)]
    async with sd_job(inst) as job:
        data = await data_session(inst, job, inst.layout.client)
        try:
            await data.send(AppendOpen())
            assert isinstance(await data.recv_message(timeout=30), Ok)
            await data.send_raw(encode_batch(first))
            await data.send_raw(encode_batch(second))
            refused = await data.recv_message(timeout=30)
        finally:
            await data.close(terminate=True)
        end = await job.end()

    # The sender is told why, and so is the Director, in the job's log and in its end.
    assert isinstance(refused, ErrorReply), refused
    number = len(first) + 2
    for text in (refused.text, end.text):
        assert f"Job {job.job}" in text
        assert f"sent record {number} of the session" in text
        assert f"file index {bad.file_index}, stream {bad.stream}" in text
        assert reason in text
    assert end.status == "E"
    errors = [m.text for m in job.told if isinstance(m, JobMessage) and m.level == "error"]
    assert any(reason in text for text in errors), errors
    # What came before the bad record is kept: on the volume and in the catalog.
    cataloged = [
        index
        for m in job.told
        if isinstance(m, AttributeBatch)
        for index, stream, _payload in m.records
        if stream == Stream.ATTRIBUTES
    ]
    assert cataloged == [1, 2, 3]
    records = _on_volume(inst, job.volume)
    assert [e for e in records if e[0] > 0] == _plain(first + second[:1])
    assert [e[0] for e in records if e[0] <= 0] == [vol.VOL_LABEL, vol.SOS_LABEL, vol.EOS_LABEL]
    (_start, end_label) = vol.VolumeReader(inst.layout.storage_dir / job.volume).sessions()
    assert end_label.status == "E" and end_label.files == 3
