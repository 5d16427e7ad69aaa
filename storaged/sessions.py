"""The data sessions of a Storage Daemon job: append (FD → volume) and read (volume → FD)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final

from common.net import Connection, NetError
from protocol.errors import ProtocolError
from protocol.frames import Signal
from protocol.jobs import (
    AppendDone,
    AppendOpen,
    AttributeBatch,
    JobMediaReport,
    Ok,
    ReadOpen,
    VolumeAssignment,
    VolumeRequest,
    VolumeUpdate,
)
from protocol.messages import Code, ErrorReply
from protocol.records import (
    BATCH_BYTES,
    Record,
    Stream,
    decode_batch,
    encode_batch,
    encode_batch_parts,
)
from storaged import volume as vol
from storaged.jobs import SdJob, SdJobError

CATALOG_STREAMS: Final = frozenset({Stream.ATTRIBUTES, Stream.DIGEST, Stream.DELETED})
ATTR_BATCH: Final = 400
VOLUME_WAIT: Final = 600.0
SESSION_OPEN_TIMEOUT: Final = 60.0
# Batches (~BATCH_BYTES each) queued to a session's volume writer thread, and read ahead by its
# volume reader thread. Each thread goes from one batch to the next without waiting for the event
# loop, which on a busy loop (TLS, a remote copy) answers a thread only after ~1 ms.
WRITE_AHEAD: Final = 4
READ_AHEAD: Final = 4
# A copy moves records between volumes in batches this large (a restore's go to a File Daemon in
# frames of at most 1 MB): each batch is a hand-over between threads, which costs tens of
# microseconds on a VM, so fewer and larger ones leave more of the CPU to the data.
COPY_BATCH_BYTES: Final = 4 * 1024 * 1024


@dataclass
class Segment:
    """The part of this job on one volume: becomes one JobMedia row."""

    assignment: VolumeAssignment
    writer: vol.VolumeWriter
    first_index: int = 0
    last_index: int = 0
    start_block: int = 0
    start_addr: int = 0
    bytes_before: int = 0
    full: bool = False  # a record did not fit: later writes queued to this segment write nothing


def _session_label(job: SdJob, *, end: bool, first: int = 0, last: int = 0, status: str = "R") -> vol.SessionLabel:
    setup = job.setup
    return vol.SessionLabel(
        job_id=setup.job_id,
        job=setup.job,
        job_name=setup.job_name,
        client=setup.client,
        fileset=setup.fileset,
        job_type=setup.job_type,
        level=setup.level,
        pool=job.volume.pool_name if job.volume else "",
        session_id=job.session_id,
        session_time=job.session_time,
        start_time=time.time(),
        end_time=time.time() if end else None,
        files=job.files if end else 0,
        bytes=job.bytes if end else 0,
        status=status if end else None,
        first_index=first if end else 0,
        last_index=last if end else 0,
    )


def _open_segment(job: SdJob, assignment: VolumeAssignment) -> Segment:
    """Label the volume when the Director asked for a new one, then open it for append."""
    device = job.device
    path = device.archive / assignment.volume_name
    if assignment.needs_label and not path.exists():
        if not device.label_media:
            raise SdJobError(
                f"volume {assignment.volume_name} does not exist and device {device.name!r} has "
                "'Label Media = no'; label it with the console 'label' command"
            )
        vol.label_volume(
            path,
            vol.VolumeLabel(
                volume_name=assignment.volume_name, pool_name=assignment.pool_name,
                pool_type=assignment.pool_type, media_type=assignment.media_type,
                label_time=time.time(), label_program="strongroom-sd", format_version=vol.FORMAT_VERSION,
            ),
        )
    if not path.exists():
        raise SdJobError(f"volume {assignment.volume_name} not found at {path}")
    label = vol.read_label(path)
    if label.volume_name != assignment.volume_name:
        raise SdJobError(f"volume file {path} is labeled {label.volume_name!r}, not {assignment.volume_name!r}")
    writer = vol.VolumeWriter(path, max_bytes=assignment.max_bytes or None)
    pos = writer.start_session(_session_label(job, end=False))
    return Segment(assignment, writer, start_block=pos.block_number, start_addr=pos.offset,
                   bytes_before=path.stat().st_size)


def _close_segment(job: SdJob, seg: Segment, *, final: bool, status: str) -> tuple[vol.Position, int]:
    if final:
        pos = seg.writer.end_session(_session_label(job, end=True, first=seg.first_index, last=seg.last_index, status=status))
    else:
        pos = seg.writer.flush()
    seg.writer.close()
    size = (job.device.archive / seg.assignment.volume_name).stat().st_size
    return pos, size


async def _report_segment(job: SdJob, seg: Segment, pos: vol.Position, size: int, full: bool) -> None:
    if seg.first_index:
        await job.tell_director(JobMediaReport(
            job=job.name, volume_name=seg.assignment.volume_name, media_id=seg.assignment.media_id,
            first_index=seg.first_index, last_index=seg.last_index, start_block=seg.start_block,
            end_block=pos.block_number, start_addr=seg.start_addr, end_addr=pos.offset,
            bytes=size - seg.bytes_before,
        ))
    await job.tell_director(VolumeUpdate(
        job=job.name, volume_name=seg.assignment.volume_name, bytes=size, blocks=pos.block_number + 1,
        status="Full" if full else "Append", jobs_written=1,
    ))


def _write_records(seg: Segment, job: SdJob, records: list[Record]) -> int:
    """Write records until the volume is full; return how many were written."""
    if seg.full:
        return 0
    for n, record in enumerate(records):
        try:
            seg.writer.write(job.session_id, job.session_time, record)
        except vol.VolumeFull:
            seg.full = True
            return n
        if record.file_index > 0:
            if not seg.first_index:
                seg.first_index = record.file_index
            seg.last_index = max(seg.last_index, record.file_index)
    return len(records)


async def run_append(job: SdJob, data: Connection, log: Any) -> None:
    """Receive a File Daemon's (or a replicating SD's) records until EOD and write them to volumes."""
    opening = await data.recv_message(timeout=SESSION_OPEN_TIMEOUT)
    if not isinstance(opening, AppendOpen):
        raise ProtocolError(f"expected append_open, got {opening.TYPE!r}")
    if job.volume is None:
        raise SdJobError("no volume was assigned to this backup job")
    seg = await _open_first_segment(job, job.volume)

    async def batches() -> AsyncIterator[list[Record]]:
        while True:
            try:
                event = await data.recv_event()
            except (NetError, ProtocolError):
                if job.canceled.is_set():
                    raise SdJobError("job canceled") from None
                raise
            if event is Signal.EOD:
                return
            if isinstance(event, Signal):
                raise ProtocolError(f"the sender sent {event.name} before end of data")
            yield decode_batch(event)

    async def close_on_cancel() -> None:
        # A cancel closes the data connection: the receive loop then ends without a per-batch wait.
        await job.canceled.wait()
        await data.close()

    await data.send(Ok(code=Code.SD_OK, text="OK data"))
    watcher = asyncio.create_task(close_on_cancel())
    try:
        await append_batches(job, seg, batches())
    finally:
        watcher.cancel()
    await data.send(AppendDone(code=Code.SD_OK, files=job.files, bytes=job.bytes))
    log.info("append_session_done", job=job.name, files=job.files, bytes=job.bytes)


async def append_batches(job: SdJob, seg: Segment, source: AsyncIterator[list[Record]]) -> None:
    """Write record batches to volumes (rolling over when full) and forward attributes to the Director."""
    await job.set_status("R")
    pending: list[tuple[int, int, bytes]] = []
    status = "E"
    loop = asyncio.get_running_loop()
    # One thread writes this session's batches in order, up to WRITE_AHEAD of them queued: the disk
    # works on them while the next ones are received (or read).
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sd-write")
    writes: deque[tuple[asyncio.Future[int], list[Record]]] = deque()
    try:
        async for batch in source:
            for record in batch:
                if record.stream in CATALOG_STREAMS:
                    pending.append((record.file_index, record.stream, bytes(record.payload)))
                    if record.stream == Stream.ATTRIBUTES:
                        job.files += 1
                elif record.stream != Stream.DELETED:
                    job.bytes += len(record.payload)
            records = [r for r in batch if r.stream != Stream.DELETED]
            if len(writes) >= WRITE_AHEAD:
                seg = await _settle_writes(job, seg, writes, writer, keep=WRITE_AHEAD - 1)
            writes.append((loop.run_in_executor(writer, _write_records, seg, job, records), records))
            if len(pending) >= ATTR_BATCH:
                await job.tell_director(AttributeBatch(job=job.name, records=tuple(pending)))
                pending = []
        seg = await _settle_writes(job, seg, writes, writer, keep=0)
        if pending:
            await job.tell_director(AttributeBatch(job=job.name, records=tuple(pending)))
        status = "T"
    finally:
        try:
            if writes:
                seg.full = True  # a failed or canceled session: queued writes that did not start write nothing
                await asyncio.wait([write for write, _records in writes])
                _discard(write for write, _records in writes)
            # Queued behind any write still running in the thread, even after a cancel.
            pos, size = await loop.run_in_executor(writer, partial(_close_segment, job, seg, final=True, status=status))
        finally:
            writer.shutdown(wait=False)
        with contextlib.suppress(NetError):
            await _report_segment(job, seg, pos, size, full=False)


async def _settle_writes(
    job: SdJob, seg: Segment, writes: deque[tuple[asyncio.Future[int], list[Record]]],
    writer: ThreadPoolExecutor, keep: int,
) -> Segment:
    """Wait for queued writes until `keep` are left; what did not fit goes to the next volume(s)."""
    while len(writes) > keep:
        write, records = writes[0]
        written = await write
        writes.popleft()
        if written == len(records):
            continue
        # The volume is full: the writes queued behind this one wrote nothing (Segment.full), so
        # their records follow this batch's remainder on the next volume, in order.
        remaining = records[written:]
        while writes:
            write, records = writes[0]
            written = await write
            writes.popleft()
            remaining.extend(records[written:])
        loop = asyncio.get_running_loop()
        while remaining:
            seg = await _switch_volume(job, seg)
            written = await loop.run_in_executor(writer, _write_records, seg, job, remaining)
            remaining = remaining[written:]
    return seg


def _discard(futures: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel futures nobody will await; retrieve the exceptions of finished ones (no log noise)."""
    for future in futures:
        if not future.done():
            future.cancel()
        elif not future.cancelled():
            future.exception()


def _entry(spec: Any) -> vol.BootstrapVolume:
    return vol.BootstrapVolume(
        volume_name=spec.volume_name, session_id=spec.session_id, session_time=spec.session_time,
        file_indexes=spec.file_indexes,
        start=vol.Position(spec.start_block, spec.start_addr) if spec.start_addr else None,
    )


async def volume_batches(
    job: SdJob, entry: vol.BootstrapVolume, path: Path, batch_bytes: int = BATCH_BYTES,
) -> AsyncIterator[list[Record]]:
    """The selected records of one volume in batches; a damaged volume raises vol.VolumeError.

    One thread reads up to READ_AHEAD batches ahead (calls to `next` run in order, one at a time):
    the disk works while earlier batches are being sent or written."""
    loop = asyncio.get_running_loop()
    batches = _batches(entry, path, batch_bytes)
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sd-read")
    ahead: deque[asyncio.Future[list[Record] | None]] = deque(
        loop.run_in_executor(reader, next, batches, None) for _ in range(READ_AHEAD)
    )
    try:
        while True:
            if job.canceled.is_set():
                raise SdJobError("job canceled")
            batch = await ahead[0]
            ahead.popleft()
            if batch is None:
                return
            ahead.append(loop.run_in_executor(reader, next, batches, None))
            yield batch
    finally:
        _discard(ahead)
        # Wait for a `next` still running in the thread, so the volume file is closed after it.
        await asyncio.to_thread(reader.shutdown, wait=True, cancel_futures=True)


async def read_batches(job: SdJob, archive: Path, batch_bytes: int) -> AsyncIterator[list[Record]]:
    """The records the job's bootstrap selects, volume by volume (no JOB_START markers)."""
    for spec in job.bootstrap:
        path = archive / spec.volume_name
        if not path.exists():
            raise SdJobError(f"volume {spec.volume_name} not found in {archive}")
        try:
            async for batch in volume_batches(job, _entry(spec), path, batch_bytes):
                yield batch
        except vol.VolumeError as exc:
            raise SdJobError(f"error reading volume {spec.volume_name}: {exc}") from exc


async def run_local_copy(job: SdJob, log: Any) -> None:
    """Copy/migrate on one SD: read the bootstrap from the read device, append to the write device."""
    assert job.read_device is not None and job.volume is not None
    seg = await _open_first_segment(job, job.volume)
    await append_batches(job, seg, read_batches(job, job.read_device.archive, COPY_BATCH_BYTES))
    log.info("local_copy_done", job=job.name, files=job.files, bytes=job.bytes)


async def run_replicate(job: SdJob, peer: Connection, log: Any) -> None:
    """The reading side of a remote copy: stream the bootstrap's records to the writing SD."""
    await peer.send(AppendOpen())
    reply = await peer.recv_message(timeout=SESSION_OPEN_TIMEOUT)
    if isinstance(reply, ErrorReply):
        raise SdJobError(f"the writing Storage Daemon refused the session: {reply.code} {reply.text}")
    await job.set_status("R")
    # A bulk connection (common.bulk) takes frames of several MiB; a plain one, BATCH_BYTES.
    batch_bytes = min(COPY_BATCH_BYTES, max(BATCH_BYTES, peer.limits.max_frame_size // 2))
    async for batch in read_batches(job, job.device.archive, batch_bytes):
        job.files += sum(1 for r in batch if r.stream == Stream.ATTRIBUTES)
        job.bytes += sum(len(r.payload) for r in batch if r.stream != Stream.ATTRIBUTES)
        await peer.send_parts(encode_batch_parts(batch))
    await peer.send_signal(Signal.EOD)
    # The writing SD answers after writing what is still queued and making the volume durable.
    done = await peer.recv_message(timeout=VOLUME_WAIT)
    if not isinstance(done, AppendDone):
        raise SdJobError(f"the writing Storage Daemon did not confirm the data: {done.TYPE!r}")
    log.info("replicate_done", job=job.name, files=job.files, bytes=job.bytes)


async def _open_first_segment(job: SdJob, assignment: VolumeAssignment) -> Segment:
    """Open the assigned volume; a damaged one is marked Error and the Director asked for another."""
    for _attempt in range(3):
        try:
            return await asyncio.to_thread(_open_segment, job, assignment)
        except vol.VolumeError as exc:
            path = job.device.archive / assignment.volume_name
            size = path.stat().st_size if path.exists() else 0
            await job.message("error", f"Volume {assignment.volume_name} cannot be appended to: {exc}; marking it Error")
            await job.tell_director(VolumeUpdate(job=job.name, volume_name=assignment.volume_name, bytes=size,
                                                 blocks=0, status="Error", jobs_written=0))
            await job.tell_director(VolumeRequest(job=job.name, full_volume=assignment.volume_name, reason="error"))
            try:
                async with asyncio.timeout(VOLUME_WAIT):
                    assignment = await job.volume_replies.get()
            except TimeoutError as timeout:
                raise SdJobError("no replacement volume from the Director") from timeout
            job.setup = job.setup.model_copy(update={"volume": assignment})
    raise SdJobError("three volumes in a row could not be appended to; see the job log")


async def _switch_volume(job: SdJob, seg: Segment) -> Segment:
    """The volume is full: close this segment, ask the Director for the next volume, open it."""
    pos, size = await asyncio.to_thread(_close_segment, job, seg, final=False, status="R")
    await _report_segment(job, seg, pos, size, full=True)
    await job.message("info", f"Volume {seg.assignment.volume_name} is full ({size} bytes); asking for the next volume")
    await job.tell_director(VolumeRequest(job=job.name, full_volume=seg.assignment.volume_name, reason="full"))
    try:
        async with asyncio.timeout(VOLUME_WAIT):
            assignment = await job.volume_replies.get()
    except TimeoutError as exc:
        raise SdJobError("no next volume from the Director") from exc
    job.setup = job.setup.model_copy(update={"volume": assignment})
    return await asyncio.to_thread(_open_segment, job, assignment)


def _batches(entry: vol.BootstrapVolume, path: Path, batch_bytes: int) -> Iterator[list[Record]]:
    reader = vol.VolumeReader(path)
    batch: list[Record] = []
    size = 0
    for _selected, record in vol.select_records(reader, [entry]):
        batch.append(record)
        size += len(record.payload) + 16
        if size >= batch_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


async def run_read(job: SdJob, data: Connection, log: Any) -> None:
    """Send the records the bootstrap selects, volume by volume, then EOD."""
    opening = await data.recv_message(timeout=SESSION_OPEN_TIMEOUT)
    if not isinstance(opening, ReadOpen):
        raise ProtocolError(f"expected read_open, got {opening.TYPE!r}")
    await data.send(Ok(code=Code.SD_OK, text="OK data"))
    await job.set_status("R")
    current_job: int | None = None
    for spec in job.bootstrap:
        path = job.device.archive / spec.volume_name
        if not path.exists():
            text = f"volume {spec.volume_name} not found on device {job.device.name!r} ({path})"
            await data.send(ErrorReply(code=Code.SD_ERROR, text=text))
            raise SdJobError(text)
        if spec.job_id != current_job:
            # A new job's records follow; a job continuing on its next volume keeps its open file.
            await data.send_raw(encode_batch([Record(0, Stream.JOB_START, spec.job_id.to_bytes(8, "big"))]))
            current_job = spec.job_id
        try:
            async for batch in volume_batches(job, _entry(spec), path):
                job.files += sum(1 for r in batch if r.stream == Stream.ATTRIBUTES)
                job.bytes += sum(len(r.payload) for r in batch if r.stream != Stream.ATTRIBUTES)
                await data.send_parts(encode_batch_parts(batch))
        except vol.VolumeError as exc:
            text = f"error reading volume {spec.volume_name}: {exc}"
            await data.send(ErrorReply(code=Code.SD_ERROR, text=text))
            raise SdJobError(text) from exc
    await data.send_signal(Signal.EOD)
    log.info("read_session_done", job=job.name, files=job.files, bytes=job.bytes)
