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

from common.link import COALESCE_BELOW
from common.net import Connection, NetError
from protocol.conversations import (
    OPENING,
    SD_FROM_APPENDING_PEER,
    SD_FROM_WRITING_SD,
    Conversation,
)
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
    encode_batch_frame,
    frame_batch_bytes,
)
from storaged import volume as vol
from storaged.appender import SessionWriter, VolumeAppender, VolumeWriteFailed
from storaged.jobs import SdJob, SdJobError
from storaged.record_gate import RecordGate, RecordRefused
from storaged.reservation import Device

CATALOG_STREAMS: Final = frozenset({Stream.ATTRIBUTES, Stream.DIGEST, Stream.DELETED})
ATTR_BATCH: Final = 400
ATTR_BATCH_BYTES: Final = 256 * 1024  # payload per AttributeBatch: well under a frame
ATTR_MESSAGE_RECORDS: Final = 5000
VOLUME_WAIT: Final = 600.0
SESSION_OPEN_TIMEOUT: Final = 60.0
# Batches (~BATCH_BYTES each) queued to a session's volume writer thread, and read ahead by its
# volume reader thread. Each thread goes from one batch to the next without waiting for the event
# loop, which on a busy loop (TLS, a remote copy) answers a thread only after ~1 ms.
WRITE_AHEAD: Final = 4
READ_AHEAD: Final = 4
# A copy moves records in batches this large, and a restore sends them to a File Daemon in batches
# of RESTORE_BATCH_BYTES when the connection takes such frames (a bulk connection, common.bulk):
# each batch is a hand-over between threads, which costs tens of microseconds on a VM, so fewer and
# larger ones leave more of the CPU to the data. A restore of the Linux source tree in 2 MiB batches
# instead of 512 KiB: 6.9 -> 6.3 s, about 0.9 CPU-s less; in 4 MiB batches no faster, and the
# Storage Daemon's peak RSS 107-115 MB instead of 92 (docs/performance.md, session 6).
COPY_BATCH_BYTES: Final = 4 * 1024 * 1024
RESTORE_BATCH_BYTES: Final = 2 * 1024 * 1024
# ... and at most this many records: a batch of tiny files' records is mostly Python objects
# (about 150 bytes a record), so a batch measured by its bytes alone held 30,000 of them and a
# restore of a million files of 8 bytes peaked at 114 MB in the SD, 71 MB with 512 KiB batches.
# The Linux tree's batches hold about 400 records each.
BATCH_RECORDS: Final = 8192
# How long a read session waits, after its EOD, for the File Daemon to finish writing and say so.
READER_DONE_WAIT: Final = 600.0
# Volumes in a row that may fill up, fail or refuse a session before the job gives up.
MAX_VOLUME_ATTEMPTS: Final = 3


@dataclass
class Segment:
    """The part of this job on one volume: becomes one JobMedia row."""

    assignment: VolumeAssignment
    session: SessionWriter
    stopped: bool = (
        False  # a write failed or the volume filled: later writes queued here write nothing
    )
    released: bool = False  # reported, and the volume left: nothing more is written here

    @property
    def appender(self) -> VolumeAppender:
        return self.session.volume


@dataclass
class Appending:
    """The segment a session currently writes: it moves on when a volume fills up or fails, and
    whoever ends the session must end it where it is now."""

    seg: Segment


def _session_label(
    job: SdJob, *, end: bool, seg: Segment | None = None, status: str = "R"
) -> vol.SessionLabel:
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
        first_index=seg.session.first_index if end and seg else 0,
        last_index=seg.session.last_index if end and seg else 0,
    )


def _prepare_volume(job: SdJob, assignment: VolumeAssignment) -> Path:
    """Label the volume when the Director asked for a new one; check the label of an existing one."""
    device = job.device
    path = device.archive / assignment.volume_name
    if assignment.needs_label and not path.exists():
        if not device.label_media:
            raise SdJobError(
                f"volume {assignment.volume_name} does not exist and device {device.name!r} has "
                "'Label Media = no'; label it with the console 'label' command"
            )
        with contextlib.suppress(vol.VolumeExists):  # another job given it labeled it first
            vol.label_volume(
                path,
                vol.VolumeLabel(
                    volume_name=assignment.volume_name,
                    pool_name=assignment.pool_name,
                    pool_type=assignment.pool_type,
                    media_type=assignment.media_type,
                    label_time=time.time(),
                    label_program="strongroom-sd",
                    format_version=vol.FORMAT_VERSION,
                ),
            )
    if not path.exists():
        raise SdJobError(f"volume {assignment.volume_name} not found at {path}")
    label = vol.read_label(path)
    if label.volume_name != assignment.volume_name:
        raise SdJobError(
            f"volume file {path} is labeled {label.volume_name!r}, not {assignment.volume_name!r}"
        )
    return path


async def _open_segment(job: SdJob, assignment: VolumeAssignment) -> Segment:
    """Join the volume's one writer (opening the volume if this is its first session) and start
    this job's session on it."""
    path = await asyncio.to_thread(_prepare_volume, job, assignment)
    appender = await job.open_volumes.acquire(
        path, assignment.max_bytes or None, job.device.direct_io
    )
    if appender.repair is not None and appender.blocks_written == 0:
        repair = appender.repair
        await job.message(
            "warning",
            f"Volume {assignment.volume_name}: cut off {repair.removed} bytes at byte offset "
            f"{repair.offset} ({repair.reason}), left by an interrupted write; every complete "
            "block before it is kept",
        )
    session = SessionWriter(appender, job.session_id, job.session_time)
    session.start(_session_label(job, end=False))
    if job.registry is not None:
        job.registry.reservations.volume_changed(job.device, job.name, assignment.volume_name)
    return Segment(assignment, session)


def _end_segment(job: SdJob, seg: Segment, status: str | None) -> None:
    """Close this job's part of the volume: with `status`, the end-of-session label; then make it
    durable (the job is confirmed only after this)."""
    if status is not None:
        seg.session.flush()  # the label's first/last file index count the records still held
        seg.session.end(_session_label(job, end=True, seg=seg, status=status))
    elif seg.session.first is not None:
        seg.appender.sync()


async def _finish_segment(job: SdJob, seg: Segment) -> None:
    """Report the segment (JobMedia and volume usage) and leave the volume (once)."""
    if seg.released:
        return
    seg.released = True
    try:
        with contextlib.suppress(NetError):
            await _report_segment(job, seg)
    finally:
        await job.open_volumes.release(seg.appender)


async def _report_segment(job: SdJob, seg: Segment) -> None:
    session, appender = seg.session, seg.appender
    if session.first is not None and session.last is not None and session.first_index:
        await job.tell_director(
            JobMediaReport(
                job=job.name,
                volume_name=seg.assignment.volume_name,
                media_id=seg.assignment.media_id,
                first_index=session.first_index,
                last_index=session.last_index,
                start_block=session.first.block_number,
                end_block=session.last.block_number,
                start_addr=session.first.offset,
                end_addr=session.last.offset,
                bytes=session.written,
            )
        )
    await job.tell_director(
        VolumeUpdate(
            job=job.name,
            volume_name=seg.assignment.volume_name,
            bytes=appender.size,
            blocks=appender.next_block,
            status=appender.status or "Append",
            jobs_written=1 if session.first is not None else 0,
            files_written=session.files,
            reason=appender.reason,
        )
    )


def _write_records(seg: Segment, records: list[Record]) -> list[Record]:
    """Write records to the segment's volume; returns those that must go to the next volume (the
    volume filled up or a write failed: the block that was not written and every later record)."""
    if seg.stopped:
        return records
    for n, record in enumerate(records):
        try:
            try:
                seg.session.write(record)
            except vol.VolumeFull:
                seg.session.flush()  # what is already in the block still goes to this volume
                seg.stopped = True
                return records[n:]
        except VolumeWriteFailed:
            seg.stopped = True
            return seg.session.unwritten() + records[n:]
    return []


async def refuse_foreign_peer(job: SdJob, data: Connection) -> None:
    """End the job when its data peer's certificate is not the one it must carry (#13): the peer
    and the Director are told why."""
    binding = job.binding
    problem = binding.check(data.ssl_object) if binding is not None else None
    if binding is None or problem is None:
        return
    text = f"Job {job.name}: refusing the {binding.role} data session from {data.peer}: {problem}"
    with contextlib.suppress(NetError):
        await data.send(ErrorReply(code=Code.SD_ERROR, text=text))
    raise SdJobError(text)


async def run_append(job: SdJob, data: Connection, log: Any) -> None:
    """Receive a File Daemon's (or a replicating SD's) records until EOD and write them to volumes."""
    await refuse_foreign_peer(job, data)
    sender = "reading SD" if job.setup.listen else "File Daemon"
    talk = Conversation(
        f"Storage Daemon <- {sender} (job {job.name}, append data)", SD_FROM_APPENDING_PEER, OPENING
    )
    talk.receive(await data.recv_message(timeout=SESSION_OPEN_TIMEOUT))  # AppendOpen, or why not
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
            if isinstance(event, Signal):
                talk.receive(event)  # EOD ends the data; any other signal is a ProtocolError
                return
            records = decode_batch(event)
            talk.receive(records)
            yield records

    async def close_on_cancel() -> None:
        # A cancel closes the data connection: the receive loop then ends without a per-batch wait.
        await job.canceled.wait()
        await data.close()

    await data.send(Ok(code=Code.SD_OK, text="OK data"))
    watcher = asyncio.create_task(close_on_cancel())
    # Whoever sends, only the records of files are stored (#13): a replicating Storage Daemon
    # sends what it read from a volume, which is what a File Daemon sent.
    gate = RecordGate(job.name, "Storage Daemon" if job.setup.listen else "File Daemon")
    try:
        await append_batches(job, seg, batches(), gate)
    except RecordRefused as refused:
        with contextlib.suppress(NetError):
            await data.send(ErrorReply(code=Code.SD_ERROR, text=str(refused)))
        raise
    finally:
        watcher.cancel()
    await data.send(AppendDone(code=Code.SD_OK, files=job.files, bytes=job.bytes))
    log.info("append_session_done", job=job.name, files=job.files, bytes=job.bytes)


async def _tell_attributes(job: SdJob, pending: list[tuple[int, int, bytes]]) -> None:
    """Forward catalog records to the Director in messages of at most ATTR_MESSAGE_RECORDS records
    and about ATTR_BATCH_BYTES of payload: a File Daemon's batch of several MiB (a bulk connection) holds
    tens of thousands of attributes, more than one frame to the Director may carry."""
    start, size = 0, 0
    for end, (_index, _stream, payload) in enumerate(pending, 1):
        size += len(payload)
        if end - start >= ATTR_MESSAGE_RECORDS or size >= ATTR_BATCH_BYTES or end == len(pending):
            await job.tell_director(AttributeBatch(job=job.name, records=tuple(pending[start:end])))
            start, size = end, 0


async def append_batches(
    job: SdJob,
    seg: Segment,
    source: AsyncIterator[list[Record]],
    gate: RecordGate | None = None,
) -> None:
    """Write record batches to volumes (rolling over when full) and forward attributes to the Director.

    With a `gate`, a batch is written up to its first refused record; the records before it are
    written and cataloged, then the session ends with the refusal (RecordRefused)."""
    await job.set_status("R")
    pending: list[tuple[int, int, bytes]] = []
    status = "E"
    at = Appending(seg)
    loop = asyncio.get_running_loop()
    # One thread writes this session's batches in order, up to WRITE_AHEAD of them queued: the disk
    # works on them while the next ones are received (or read).
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sd-write")
    writes: deque[asyncio.Future[list[Record]]] = deque()
    try:
        async for received in source:
            batch, refused = (received, None) if gate is None else gate.admit(received)
            for record in batch:
                if record.stream in CATALOG_STREAMS:
                    pending.append((record.file_index, record.stream, bytes(record.payload)))
                    if record.stream == Stream.ATTRIBUTES:
                        job.files += 1
                elif record.stream != Stream.DELETED:
                    job.bytes += len(record.payload)
            records = [r for r in batch if r.stream != Stream.DELETED]
            if len(writes) >= WRITE_AHEAD:
                await _settle_writes(job, at, writes, writer, keep=WRITE_AHEAD - 1)
            writes.append(loop.run_in_executor(writer, _write_records, at.seg, records))
            if len(pending) >= ATTR_BATCH:
                await _tell_attributes(job, pending)
                pending = []
            if refused is not None:
                # What came before the refused record is on the volume: catalog it, then stop.
                await _settle_writes(job, at, writes, writer, keep=0)
                await _tell_attributes(job, pending)
                raise refused
        await _settle_writes(job, at, writes, writer, keep=0)
        await _tell_attributes(job, pending)
        status = "T"
    finally:
        try:
            if writes:
                at.seg.stopped = True  # a failed or canceled session: queued writes that did not start write nothing
                await asyncio.wait(writes)
                _discard(writes)
            # Queued behind any write still running in the thread, even after a cancel.
            await _end_session(job, at, writer, status)
        finally:
            writer.shutdown(wait=False)


async def _end_session(job: SdJob, at: Appending, writer: ThreadPoolExecutor, status: str) -> None:
    """Write the end-of-session label and make the session durable. A good session whose label
    does not fit (the volume failed) ends on the next volume; a failed one ends where it can, and
    its own failure is what the job reports."""
    loop = asyncio.get_running_loop()
    try:
        for _attempt in range(MAX_VOLUME_ATTEMPTS):
            if at.seg.released:  # moving to the next volume failed: the session already failed
                return
            try:
                await loop.run_in_executor(writer, partial(_end_segment, job, at.seg, status))
                return
            except VolumeWriteFailed as exc:
                if status != "T":
                    return
                # The block that failed held the session's last records, not only its end label:
                # they go to the next volume first, as any write that fails mid-session.
                leftover = at.seg.session.unwritten()
                await job.message("warning", f"{exc}; the session ends on the next volume")
                if leftover:
                    failed: asyncio.Future[list[Record]] = loop.create_future()
                    failed.set_result(leftover)
                    await _settle_writes(job, at, deque([failed]), writer, keep=0)
                else:
                    await _switch_volume(job, at)
        raise SdJobError(
            f"{MAX_VOLUME_ATTEMPTS} volumes in a row could not take the end of the session"
        )
    except (vol.VolumeError, OSError):
        if status == "T":
            raise
    finally:
        await _finish_segment(job, at.seg)


async def _settle_writes(
    job: SdJob,
    at: Appending,
    writes: deque[asyncio.Future[list[Record]]],
    writer: ThreadPoolExecutor,
    keep: int,
) -> None:
    """Wait for queued writes until `keep` are left; what did not fit goes to the next volume(s).
    A job gives up when MAX_VOLUME_ATTEMPTS volumes in a row take none of its records."""
    loop = asyncio.get_running_loop()
    while len(writes) > keep:
        leftover = await writes.popleft()
        if not leftover:
            continue
        # The volume filled up or failed: the writes queued behind this one wrote nothing
        # (Segment.stopped), so their records follow this batch's remainder on the next volume, in order.
        while writes:
            leftover.extend(await writes.popleft())
        refused = 0
        while leftover:
            await _switch_volume(job, at)
            rest = await loop.run_in_executor(writer, _write_records, at.seg, leftover)
            refused = refused + 1 if len(rest) == len(leftover) else 0
            if refused >= MAX_VOLUME_ATTEMPTS:
                raise SdJobError(
                    f"{MAX_VOLUME_ATTEMPTS} volumes in a row took none of the job's records; "
                    "see the job log"
                )
            leftover = rest


def _discard(futures: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel futures nobody will await; retrieve the exceptions of finished ones (no log noise)."""
    for future in futures:
        if not future.done():
            future.cancel()
        elif not future.cancelled():
            future.exception()


def _entry(spec: Any) -> vol.BootstrapVolume:
    return vol.BootstrapVolume(
        volume_name=spec.volume_name,
        session_id=spec.session_id,
        session_time=spec.session_time,
        file_indexes=spec.file_indexes,
        start=vol.Position(spec.start_block, spec.start_addr) if spec.start_addr else None,
    )


async def volume_batches(
    job: SdJob,
    entry: vol.BootstrapVolume,
    path: Path,
    batch_bytes: int = BATCH_BYTES,
    direct_io: bool = True,
) -> AsyncIterator[list[Record]]:
    """The selected records of one volume in batches; a damaged volume raises vol.VolumeError.

    One thread reads up to READ_AHEAD batches ahead (calls to `next` run in order, one at a time):
    the disk works while earlier batches are being sent or written."""
    loop = asyncio.get_running_loop()
    batches = _batches(entry, path, batch_bytes, direct_io)
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


async def read_batches(job: SdJob, device: Device, batch_bytes: int) -> AsyncIterator[list[Record]]:
    """The records the job's bootstrap selects from `device`'s volumes, volume by volume (no
    JOB_START markers)."""
    archive = device.archive
    for spec in job.bootstrap:
        path = archive / spec.volume_name
        if not path.exists():
            raise SdJobError(f"volume {spec.volume_name} not found in {archive}")
        try:
            async for batch in volume_batches(
                job, _entry(spec), path, batch_bytes, device.direct_io
            ):
                yield batch
        except vol.VolumeError as exc:
            raise SdJobError(f"error reading volume {spec.volume_name}: {exc}") from exc


async def run_local_copy(job: SdJob, log: Any) -> None:
    """Copy/migrate on one SD: read the bootstrap from the read device, append to the write device."""
    assert job.read_device is not None and job.volume is not None
    seg = await _open_first_segment(job, job.volume)
    await append_batches(job, seg, read_batches(job, job.read_device, COPY_BATCH_BYTES))
    log.info("local_copy_done", job=job.name, files=job.files, bytes=job.bytes)


async def run_replicate(job: SdJob, peer: Connection, log: Any) -> None:
    """The reading side of a remote copy: stream the bootstrap's records to the writing SD."""
    talk = Conversation(
        f"reading Storage Daemon <- writing Storage Daemon (job {job.name}, copy data)",
        SD_FROM_WRITING_SD,
        OPENING,
    )
    await peer.send(AppendOpen())
    reply = await peer.recv_message(timeout=SESSION_OPEN_TIMEOUT)
    talk.receive(reply)
    if isinstance(reply, ErrorReply):
        raise SdJobError(
            f"the writing Storage Daemon refused the session: {reply.code} {reply.text}"
        )
    await job.set_status("R")
    async for batch in read_batches(
        job, job.device, frame_batch_bytes(peer.limits.max_frame_size, COPY_BATCH_BYTES)
    ):
        frame = encode_batch_frame(batch, COALESCE_BELOW)
        job.files += frame.files
        job.bytes += frame.other_bytes
        await peer.send_batch_frame(frame)
    await peer.send_signal(Signal.EOD)
    # The writing SD answers after writing what is still queued and making the volume durable.
    done = await peer.recv_message(timeout=VOLUME_WAIT)
    talk.receive(done)  # AppendDone, or an ErrorReply saying why the data is not stored
    if not isinstance(done, AppendDone):
        text = done.text if isinstance(done, ErrorReply) else done.TYPE
        raise SdJobError(f"the writing Storage Daemon did not confirm the data: {text}")
    log.info("replicate_done", job=job.name, files=job.files, bytes=job.bytes)


async def _open_first_segment(job: SdJob, assignment: VolumeAssignment) -> Segment:
    """Open the assigned volume; one that cannot be appended to is marked and another one asked for."""
    for _attempt in range(MAX_VOLUME_ATTEMPTS):
        try:
            return await _open_segment(job, assignment)
        except vol.VolumeError as exc:
            assignment = await _replace_volume(job, assignment, exc)
    raise SdJobError(
        f"{MAX_VOLUME_ATTEMPTS} volumes in a row could not be appended to; see the job log"
    )


async def _replace_volume(
    job: SdJob, assignment: VolumeAssignment, exc: vol.VolumeError
) -> VolumeAssignment:
    """Mark a volume that cannot be opened for append (Full after ENOSPC, Error otherwise) and
    wait for the Director's next volume."""
    path = job.device.archive / assignment.volume_name
    status = (
        "Full"
        if isinstance(exc, vol.VolumeFull)
        or (isinstance(exc, VolumeWriteFailed) and exc.status == "Full")
        else "Error"
    )
    size = path.stat().st_size if path.exists() else 0
    await job.message(
        "error",
        f"Volume {assignment.volume_name} cannot be appended to: {exc}; marking it {status}",
    )
    await job.tell_director(
        VolumeUpdate(
            job=job.name,
            volume_name=assignment.volume_name,
            bytes=size,
            blocks=0,
            status=status,
            jobs_written=0,
            reason=str(exc),
        )
    )
    return await _next_assignment(job, assignment.volume_name, status.lower())


async def _next_assignment(job: SdJob, volume: str, reason: str) -> VolumeAssignment:
    await job.tell_director(VolumeRequest(job=job.name, full_volume=volume, reason=reason))
    try:
        async with asyncio.timeout(VOLUME_WAIT):
            assignment = await job.volume_replies.get()
    except TimeoutError as timeout:
        raise SdJobError(f"no next volume from the Director within {VOLUME_WAIT:g} s") from timeout
    job.setup = job.setup.model_copy(update={"volume": assignment})
    return assignment


async def _switch_volume(job: SdJob, at: Appending) -> None:
    """The volume filled up or failed: close this job's part of it, ask the Director for the next
    volume, open it."""
    seg = at.seg
    try:
        await asyncio.to_thread(_end_segment, job, seg, None)
    finally:
        await _finish_segment(job, seg)
    appender = seg.appender
    name = seg.assignment.volume_name
    if appender.status == "Error":
        await job.message(
            "error", f"Volume {name} is marked Error: {appender.reason}; asking for the next volume"
        )
    elif appender.reason.startswith("writing"):
        await job.message(
            "warning", f"Volume {name} is Full: {appender.reason}; asking for the next volume"
        )
    else:
        await job.message(
            "info", f"Volume {name} is full ({appender.size} bytes); asking for the next volume"
        )
    assignment = await _next_assignment(
        job, name, "error" if appender.status == "Error" else "full"
    )
    at.seg = await _open_first_segment(job, assignment)


def _batches(
    entry: vol.BootstrapVolume, path: Path, batch_bytes: int, direct_io: bool = True
) -> Iterator[list[Record]]:
    reader = vol.VolumeReader(path, direct_io)
    batch: list[Record] = []
    size = 0
    for _selected, record in vol.select_records(reader, [entry]):
        batch.append(record)
        size += len(record.payload) + 16
        if size >= batch_bytes or len(batch) >= BATCH_RECORDS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


async def run_read(job: SdJob, data: Connection, log: Any) -> None:
    """Send the records the bootstrap selects, volume by volume, then EOD."""
    await refuse_foreign_peer(job, data)
    opening = await data.recv_message(timeout=SESSION_OPEN_TIMEOUT)
    if not isinstance(opening, ReadOpen):
        raise ProtocolError(f"expected read_open, got {opening.TYPE!r}")
    await data.send(Ok(code=Code.SD_OK, text="OK data"))
    await job.set_status("R")
    batch_size = frame_batch_bytes(data.limits.max_frame_size, RESTORE_BATCH_BYTES)
    current_job: int | None = None
    for spec in job.bootstrap:
        path = job.device.archive / spec.volume_name
        if not path.exists():
            text = f"volume {spec.volume_name} not found on device {job.device.name!r} ({path})"
            await data.send(ErrorReply(code=Code.SD_ERROR, text=text))
            raise SdJobError(text)
        if spec.job_id != current_job:
            # A new job's records follow; a job continuing on its next volume keeps its open file.
            await data.send_raw(
                encode_batch([Record(0, Stream.JOB_START, spec.job_id.to_bytes(8, "big"))])
            )
            current_job = spec.job_id
        try:
            async for batch in volume_batches(
                job, _entry(spec), path, batch_size, direct_io=job.device.direct_io
            ):
                frame = encode_batch_frame(batch, COALESCE_BELOW)
                job.files += frame.files
                job.bytes += frame.other_bytes
                await data.send_batch_frame(frame)
        except vol.VolumeError as exc:
            text = f"error reading volume {spec.volume_name}: {exc}"
            await data.send(ErrorReply(code=Code.SD_ERROR, text=text))
            raise SdJobError(text) from exc
    await data.send_signal(Signal.EOD)
    await _until_reader_done(data)
    log.info("read_session_done", job=job.name, files=job.files, bytes=job.bytes)


async def _until_reader_done(data: Connection) -> None:
    """Keep the connection open until the File Daemon has taken everything: it answers EOD with
    TERMINATE once its files are written. Closing right after EOD gives a transport with unsent
    data only a short grace before it is aborted, and a File Daemon still writing a backlog of
    small files then lost the end of its restore ("connection closed mid-frame body")."""
    with contextlib.suppress(NetError, ProtocolError, TimeoutError):
        while await data.recv_event(timeout=READER_DONE_WAIT) is not Signal.TERMINATE:
            pass
