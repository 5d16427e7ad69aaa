"""The volume reader and writer threads of a session: order kept with batches queued, rollover, early stop."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from common.bulk import BULK_FRAME_SIZE
from common.link import Limits
from filed.backup import CHUNK
from filed.control import BULK_BATCH_BYTES
from protocol.jobs import BootstrapSpec, JobMediaReport, SdJobSetup, VolumeAssignment
from protocol.messages import Message
from protocol.records import (
    BATCH_BYTES,
    OFFSET_SIZE,
    Record,
    Stream,
    encode_batch,
    frame_batch_bytes,
)
from storaged import sessions
from storaged import volume as vol
from storaged.jobs import Device, SdJob


@dataclass(eq=False)
class RecordingJob(SdJob):
    """An SdJob whose messages to the Director are kept instead of sent."""

    told: list[Message] = field(default_factory=list)

    async def tell_director(self, msg: Message) -> None:
        self.told.append(msg)


def _assignment(n: int, max_bytes: int = 0) -> VolumeAssignment:
    return VolumeAssignment(
        volume_name=f"Full-{n:04d}",
        media_id=n,
        pool_name="Full",
        pool_type="Backup",
        media_type="File",
        max_bytes=max_bytes,
        needs_label=True,
    )


def _job(
    archive: Path,
    assignment: VolumeAssignment | None = None,
    bootstrap: tuple[BootstrapSpec, ...] = (),
) -> RecordingJob:
    setup = SdJobSetup(
        job_id=7,
        job="copy.7",
        job_name="copy",
        client="c",
        fileset="fs",
        job_type="C",
        level="F",
        device="File",
        media_type="File",
        append=assignment is not None,
        volume=assignment,
        bootstrap=bootstrap,
    )
    device = Device(name="File", media_type="File", archive=archive, label_media=True, max_jobs=1)
    return RecordingJob(setup=setup, key="k", session_id=3, session_time=100, device=device)


def _batches(count: int, per_batch: int = 3, size: int = 3000) -> list[list[Record]]:
    out: list[list[Record]] = []
    index = 0
    for _ in range(count):
        batch: list[Record] = []
        for _ in range(per_batch):
            index += 1
            batch.append(Record(index, Stream.ATTRIBUTES, f"attrs{index}".encode()))
            batch.append(Record(index, Stream.DATA, bytes([index % 256]) * size))
        out.append(batch)
    return out


async def _source(batches: list[list[Record]]) -> AsyncIterator[list[Record]]:
    for batch in batches:
        yield batch


def _read_back(archive: Path, names: list[str]) -> list[tuple[int, int, bytes]]:
    out: list[tuple[int, int, bytes]] = []
    for name in names:
        for record in vol.VolumeReader(archive / name).records():
            if record.file_index > 0:
                out.append((record.file_index, record.stream, bytes(record.payload)))
    return out


async def test_rollover_with_writes_queued_keeps_every_record_in_order(tmp_path: Path) -> None:
    first = _assignment(1, max_bytes=40_000)
    job = _job(tmp_path, first)
    for n in (2, 3, 4):
        job.volume_replies.put_nowait(_assignment(n, max_bytes=40_000))
    batches = _batches(12)
    seg = await sessions._open_first_segment(job, first)

    await sessions.append_batches(job, seg, _source(batches))

    names = [m.volume_name for m in job.told if isinstance(m, JobMediaReport)]
    assert len(names) >= 3  # several volumes filled while up to WRITE_AHEAD batches were queued
    expected = [(r.file_index, r.stream, bytes(r.payload)) for batch in batches for r in batch]
    assert _read_back(tmp_path, names) == expected
    assert (job.files, job.bytes) == (36, 36 * 3000)


@pytest.mark.parametrize("direct_io", [True, False], ids=["direct", "page-cache"])
async def test_read_batches_in_order_and_stops_early(tmp_path: Path, direct_io: bool) -> None:
    assignment = _assignment(1)
    writer_job = _job(tmp_path, assignment)
    writer_job.device.direct_io = direct_io  # the Device's `Direct IO`, for writing and reading
    batches = _batches(40, per_batch=2, size=200_000)  # several BATCH_BYTES batches
    seg = await sessions._open_first_segment(writer_job, assignment)
    await sessions.append_batches(writer_job, seg, _source(batches))
    report = next(m for m in writer_job.told if isinstance(m, JobMediaReport))
    spec = BootstrapSpec(
        volume_name=assignment.volume_name, session_id=3, session_time=100, file_indexes=((1, 80),)
    )
    reader_job = _job(tmp_path, bootstrap=(spec,))
    reader_job.device.direct_io = direct_io
    assert report.first_index == 1 and report.last_index == 80

    read = [
        r
        async for batch in sessions.read_batches(reader_job, reader_job.device, BATCH_BYTES)
        for r in batch
    ]
    assert [(r.file_index, r.stream, bytes(r.payload)) for r in read] == [
        (r.file_index, r.stream, bytes(r.payload)) for batch in batches for r in batch
    ]

    stream = sessions.read_batches(reader_job, reader_job.device, BATCH_BYTES)
    assert len(await anext(stream)) > 0
    await stream.aclose()  # read-ahead still queued: closing must not hang or leak a running read


class _Reader:
    """What a File Daemon sends back on a read session after EOD, as recv_event returns it."""

    def __init__(self, *events: object) -> None:
        self.events = list(events)
        self.reads = 0

    async def recv_event(self, timeout: float | None = None) -> object:
        self.reads += 1
        event = self.events.pop(0)
        if isinstance(event, BaseException):
            raise event
        return event


async def test_a_read_session_stays_open_until_the_file_daemon_is_done() -> None:
    from common.net import ConnectionClosed
    from protocol.frames import Signal

    # The File Daemon still writes its backlog: the session waits for its TERMINATE.
    done = _Reader(Signal.EOD_POLL, Signal.TERMINATE, Signal.EOD)
    await sessions._until_reader_done(done)  # type: ignore[arg-type]  # a fake connection
    assert done.reads == 2
    # It closed without a word, or went silent past the wait: the session ends all the same.
    for gone in (_Reader(ConnectionClosed()), _Reader(TimeoutError())):
        await sessions._until_reader_done(gone)  # type: ignore[arg-type]  # a fake connection
        assert gone.reads == 1


@pytest.mark.parametrize(
    "most", [sessions.RESTORE_BATCH_BYTES, sessions.COPY_BATCH_BYTES, BULK_BATCH_BYTES]
)
def test_batches_grow_on_bulk_connections_and_always_fit_a_frame(most: int) -> None:
    """A restore, a copy or a backup sends large batches only to a peer that takes large frames, and a batch
    (cut after the record that reaches the size, as `_batches` does) always fits the peer's frame."""
    plain = Limits()
    bulk = dataclasses.replace(plain, max_frame_size=BULK_FRAME_SIZE)
    assert frame_batch_bytes(plain.max_frame_size, most) == BATCH_BYTES
    assert frame_batch_bytes(bulk.max_frame_size, most) == most
    for limits in (plain, bulk):
        size = frame_batch_bytes(limits.max_frame_size, most)
        batch, filled = [], 0
        while filled < size:  # the largest data records a File Daemon sends
            batch.append(Record(len(batch) + 1, Stream.DATA, bytes(OFFSET_SIZE + CHUNK)))
            filled += len(batch[-1].payload) + 16
        assert len(encode_batch(batch)) <= limits.max_frame_size
