"""The File Daemon's Director command loop and its job sessions (backup, restore, estimate)."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from common.auth import authenticate_initiator
from common.daemon import client_ssl_context
from common.link import COALESCE_BELOW, Body
from common.net import Connection, NetError, dial
from common.scripts import run_command
from common.tls import TlsError, check_peer_name
from common.version import VERSION
from filed.accurate import AccurateList
from filed.backup import BackupReader
from filed.protection import RESTORE_REFUSED, director_refusal
from filed.restore import RestoreStats, RestoreWriter
from protocol.attributes import decode_attributes
from protocol.conversations import (
    ENDED,
    FD_ACCURATE_LIST,
    FD_FROM_APPENDING_SD,
    FD_FROM_DIRECTOR,
    FD_FROM_READING_SD,
    IDLE,
    OPENING,
    RECEIVED,
    RECEIVING,
    RUNNING,
    Conversation,
    UnexpectedMessage,
)
from protocol.errors import ProtocolError
from protocol.fileset import FileSetSpec
from protocol.frames import Signal
from protocol.jobs import (
    AccurateBatch,
    AppendOpen,
    CancelJob,
    EstimateResult,
    FdBackup,
    FdEstimate,
    FdJobSetup,
    FdRestore,
    FdStorage,
    JobEnd,
    JobMessage,
    JobProgress,
    Ok,
    ReadOpen,
    RunScriptCommand,
    ScriptResult,
)
from protocol.messages import Code, ErrorReply, Hello, Message, StatusRequest
from protocol.records import (
    BATCH_BYTES,
    DATA_STREAMS,
    Record,
    Stream,
    decode_batch,
    decode_body,
    encode_batch_frame,
    frame_batch_bytes,
)

if TYPE_CHECKING:
    from filed.daemon import FileDaemon

PROGRESS_INTERVAL: Final = 1.0
BULK_BATCH_BYTES: Final = 4 * 1024 * 1024  # a batch of records to the Storage Daemon, at most
MAX_BATCH_RECORDS: Final = 8192  # ... and records per batch (a 4 MiB batch of tiny files: 60,000)
MAX_REASON: Final = 500  # characters of an unforeseen exception's repr in a JobEnd
DEFAULT_WORKING_DIRECTORY: Final = Path("/var/lib/strongroom")  # a Client resource without one
# No fixed timeout waits for a reply from the Director or the Storage Daemon: a reply may take long
# (the SD waits for a device or a volume, flushes a large job), and a peer that stopped answering is
# found by its missing heartbeats instead (common.link.Liveness: 2 x Heartbeat Interval + grace).


class FdJobError(Exception):
    """The job failed on this client; the text goes to the Director's job log."""


@dataclass(eq=False)
class FdJob:
    setup: FdJobSetup
    accurate: AccurateList | None = None  # an accurate job's previous state, once received
    sd: Connection | None = None
    canceled: asyncio.Event = field(default_factory=asyncio.Event)
    files: int = 0
    bytes: int = 0
    read_bytes: int = 0
    errors: int = 0
    warnings: int = 0
    current: builtins.bytes = b""
    status: str = "C"
    director_lost: str = ""  # why the Director's connection ended mid-job (nobody hears the JobEnd)
    notes: RestoreStats | None = (
        None  # a restore's per-file errors and warnings, sent before its JobEnd
    )

    @property
    def name(self) -> str:
        return self.setup.job


async def serve_director(
    fd: FileDaemon, conn: Connection, monitor: bool, log: Any, director: str = ""
) -> None:
    """Serve one Director connection (`director`: its authenticated name): its commands move along
    FD_FROM_DIRECTOR (protocol/conversations.py); a command the table does not allow in the
    current state is answered with an ErrorReply naming the state and the command, and logged; a
    job command the File Daemon's Allowed Job Command lists refuse is answered with the reason. A
    backup or restore ends the loop."""
    loop = _DirectorLoop(fd, conn, log, director)
    try:
        await loop.run(monitor)
    finally:
        job = loop.job
        if job is not None:
            fd.jobs.pop(job.name, None)
            if job.accurate is not None:
                job.accurate.close()
            if job.sd is not None:
                await job.sd.close()


_Handler = Callable[[Any], Awaitable[bool]]


class _DirectorLoop:
    """The command conversation with one Director; `job` is the job it set up, if any."""

    def __init__(self, fd: FileDaemon, conn: Connection, log: Any, director: str = "") -> None:
        self.fd = fd
        self.conn = conn
        self.log = log
        self.director = director
        self.job: FdJob | None = None
        self.talk = Conversation("File Daemon <- Director", FD_FROM_DIRECTOR, IDLE)
        # Each handler answers its command and says whether the FD accepted it (a refused one
        # leaves the conversation in its state); FdBackup and FdRestore run the job to its end.
        self.handlers: dict[str, _Handler] = {
            StatusRequest.TYPE: self._on_status,
            FdJobSetup.TYPE: self._on_job_setup,
            FdStorage.TYPE: self._on_storage,
            FdEstimate.TYPE: self._on_estimate,
            FdBackup.TYPE: self._on_backup,
            FdRestore.TYPE: self._on_restore,
            RunScriptCommand.TYPE: self._on_script,
            CancelJob.TYPE: self._on_cancel,
        }

    async def run(self, monitor: bool) -> None:
        while self.talk.state not in (RUNNING, ENDED):
            event = await self.conn.recv()
            if monitor and not isinstance(event, (StatusRequest, Signal)):
                await self.conn.send(
                    ErrorReply(
                        code=Code.FD_MONITOR_ONLY,
                        text="Invalid command for a Director with Monitor directive enabled",
                    )
                )
                continue
            try:
                nxt = self.talk.check(event)
            except UnexpectedMessage as exc:
                await _refuse_unexpected(self.conn, exc, self.log, self.job)
                continue
            if event is Signal.TERMINATE:
                return
            assert isinstance(event, Message)  # every other kind the table names is a message
            with self.fd.busy(self.conn):
                if await self.handlers[event.TYPE](event):
                    self.talk.enter(nxt)

    def _set_up(self) -> FdJob:
        assert self.job is not None  # the table allows this command only once a job is set up
        return self.job

    async def _on_status(self, msg: StatusRequest) -> bool:
        await self.conn.send(self.fd.status())
        return True

    async def _on_job_setup(self, msg: FdJobSetup) -> bool:
        job = self.job = FdJob(setup=msg)
        self.fd.jobs[job.name] = job
        working_directory = _client_setting(self.fd, "working_directory", None)
        if msg.accurate and not await _receive_accurate(
            job, self.conn, self.log, working_directory
        ):
            self.talk.enter(ENDED)  # the Director was told; nothing after a broken list makes sense
            return False
        await self.conn.send(Ok(code=Code.FD_OK, text=f"OK Job {VERSION}"))
        return True

    async def _on_storage(self, msg: FdStorage) -> bool:
        job = self._set_up()
        await _connect_storage(self.fd, job, msg, self.conn, self.log)
        return job.sd is not None

    async def _refused(self, command: str) -> bool:
        """Answer a job command this File Daemon's lists refuse (and log it); False if allowed."""
        refusal = director_refusal(getattr(self.fd, "config", None), self.director, command)
        if refusal is None:
            return False
        self.log.warning("job_command_refused", command=command, reason=refusal)
        await self.conn.send(
            ErrorReply(code=Code.FD_JOB_REFUSED, text=f"refused by the File Daemon: {refusal}")
        )
        return True

    async def _on_estimate(self, msg: FdEstimate) -> bool:
        if await self._refused("estimate"):
            return False
        await self.conn.send(await asyncio.to_thread(_estimate, self._set_up(), msg))
        return True

    async def _on_backup(self, msg: FdBackup) -> bool:
        job = self._set_up()
        if await self._refused("backup"):
            return False
        await self.conn.send(Ok(code=Code.FD_OK, text="OK backup"))
        self.talk.enter(RUNNING)
        await _session(
            self.fd, job, self.conn, self.log, _backup(self.fd, job, self.conn, self.log)
        )
        return True

    async def _on_restore(self, msg: FdRestore) -> bool:
        job = self._set_up()
        if not _client_setting(self.fd, "allow_restore", True):
            self.log.warning("restore_refused", reason=RESTORE_REFUSED)
            await self.conn.send(ErrorReply(code=Code.FD_ERROR, text=RESTORE_REFUSED))
            return False
        if await self._refused("restore"):
            return False
        await self.conn.send(Ok(code=Code.FD_OK, text="OK restore"))
        where = (
            Path(os.fsdecode(msg.where))
            if msg.where
            else default_where(_client_setting(self.fd, "working_directory", None))
        )
        self.talk.enter(RUNNING)
        direct_io = _client_setting(self.fd, "direct_io", True)
        await _session(
            self.fd, job, self.conn, self.log, _restore(job, msg, self.log, where, direct_io)
        )
        return True

    async def _on_script(self, msg: RunScriptCommand) -> bool:
        refusal = director_refusal(
            getattr(self.fd, "config", None), self.director, "runscript", msg.command
        )
        if refusal is not None:
            self.log.warning("client_script_refused", command=msg.command, reason=refusal)
            await self.conn.send(
                ScriptResult(
                    code=Code.FD_ERROR,
                    exit_status=-1,
                    output=f"refused by the File Daemon: {refusal}",
                )
            )
            return True
        self.log.info("client_script", command=msg.command)
        status, output = await run_command(msg.command, msg.timeout)
        await self.conn.send(ScriptResult(code=Code.FD_OK, exit_status=status, output=output))
        return True

    async def _on_cancel(self, msg: CancelJob) -> bool:
        target = self.fd.jobs.get(msg.job)
        if target is None:
            await self.conn.send(
                ErrorReply(code=Code.FD_NO_SUCH_JOB, text=f"Job {msg.job} not found")
            )
            return True
        target.canceled.set()
        await self.conn.send(Ok(code=2001, text=f"Job {msg.job} marked to be canceled"))
        return True


async def _refuse_unexpected(
    conn: Connection, exc: UnexpectedMessage, log: Any, job: FdJob | None
) -> None:
    """Answer a message the conversation does not allow here with an ErrorReply that names the
    state and the message, and log it: nothing a Director sends is dropped without a word."""
    log.warning(
        "protocol_error",
        job=job.name if job is not None else None,
        conversation=exc.conversation,
        state=exc.state,
        received=exc.kind,
        allowed=list(exc.allowed),
    )
    with contextlib.suppress(NetError):
        await conn.send(ErrorReply(code=Code.FD_ERROR, text=f"File Daemon: {exc.message}"))


async def _receive_accurate(
    job: FdJob, conn: Connection, log: Any, working_directory: Path | None
) -> bool:
    """Take the accurate list (AccurateBatch messages up to an EOD) into the job, its paths in a
    temporary file in the working directory; False when the Director sent anything else, after
    telling it why."""
    talk = Conversation(
        f"File Daemon <- Director (job {job.name}, accurate list)", FD_ACCURATE_LIST, RECEIVING
    )
    accurate = job.accurate = _accurate_list(working_directory, log)
    while True:
        event = await conn.recv()
        try:
            talk.receive(event)
        except UnexpectedMessage as exc:
            await _refuse_unexpected(conn, exc, log, job)
            return False
        if talk.ended:
            return talk.state == RECEIVED  # else the Director ended the conversation
        assert isinstance(event, AccurateBatch)
        accurate.add(event.entries)


def _accurate_list(working_directory: Path | None, log: Any) -> AccurateList:
    """An empty accurate list whose paths go to the working directory (made 0700 when missing),
    or to the system's temporary directory when there is none or it cannot be used."""
    if working_directory is not None:
        try:
            working_directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            return AccurateList(working_directory)
        except OSError as exc:
            log.warning(
                "accurate_list_elsewhere", directory=str(working_directory), reason=str(exc)
            )
    return AccurateList(None)


async def _connect_storage(
    fd: FileDaemon, job: FdJob, msg: FdStorage, conn: Connection, log: Any
) -> None:
    own = fd.own
    ssl_context = client_ssl_context(own, own) if msg.tls else None
    try:
        sd = await dial(msg.address, msg.port, ssl_context, fd.limits(), bulk_data=True)
        sd.peer_name = f"the Storage Daemon at {sd.peer}"
        try:
            if sd.tls and msg.name:
                try:
                    check_peer_name(
                        sd.ssl_object, msg.name, tuple(own.tls_allowed_cn), "Storage Daemon"
                    )
                except TlsError as exc:
                    raise NetError("tls", str(exc)) from exc
            await authenticate_initiator(
                sd, Hello(role="job", name=job.name, version=VERSION), msg.key
            )
        except BaseException:
            await sd.close()
            raise
    except (NetError, ProtocolError) as exc:
        step = getattr(exc, "step", "auth")
        text = f"cannot connect to the Storage Daemon at {msg.address}:{msg.port}: {step}: {exc}"
        log.warning("storage_connect_failed", job=job.name, reason=text)
        await conn.send(ErrorReply(code=Code.FD_JOB_REFUSED, text=text))
        return
    job.sd = sd
    await conn.send(Ok(code=Code.FD_OK, text="OK storage"))


async def _session(fd: FileDaemon, job: FdJob, conn: Connection, log: Any, work: Any) -> None:
    """Run a backup or restore while watching the control connection for cancel."""
    job.status = "R"
    watcher = asyncio.create_task(_watch_control(job, conn, log))
    progress = asyncio.create_task(_report_progress(job, conn))
    status, text = "E", ""
    try:
        status, text = await work
    except FdJobError as exc:
        status, text = ("A" if job.canceled.is_set() else "E"), str(exc)
    except (NetError, ProtocolError) as exc:
        status, text = (
            ("A" if job.canceled.is_set() else "E"),
            f"Storage Daemon connection failed: {exc}",
        )
    except Exception as exc:  # the job's boundary: whatever went wrong, the Director gets a JobEnd
        log.exception("job_crashed", job=job.name)
        status, text = "E", f"internal error: {exc!r:.{MAX_REASON}}"
    finally:
        progress.cancel()
        watcher.cancel()
        for task in (progress, watcher):
            with contextlib.suppress(asyncio.CancelledError, NetError, ProtocolError):
                await task
    job.status = status
    if not job.director_lost:
        if job.notes is not None:
            await _send_notes(conn, job, job.notes)
        if text:
            await _jmsg(conn, job, "error" if status not in ("T", "W") else "warning", text)
        try:
            await conn.send(
                JobEnd(
                    code=Code.FD_JOB_END,
                    job=job.name,
                    status=status,
                    files=job.files,
                    bytes=job.bytes,
                    read_bytes=job.read_bytes,
                    errors=job.errors,
                    warnings=job.warnings,
                    text=text,
                )
            )
        except NetError as exc:
            job.director_lost = str(exc)
    if job.director_lost:
        log.warning(
            "job_ended_without_director",
            job=job.name,
            status=status,
            files=job.files,
            bytes=job.bytes,
            reason=job.director_lost,
        )
        return
    log.info("job_ended", job=job.name, status=status, files=job.files, bytes=job.bytes)


async def _watch_control(job: FdJob, conn: Connection, log: Any) -> None:
    """End the job on CancelJob or TERMINATE, and when the Director is gone (closed, or silent past
    its heartbeats): no one would take its end, and the Storage Daemon must let its device go."""
    talk = Conversation(f"File Daemon <- Director (job {job.name})", FD_FROM_DIRECTOR, RUNNING)
    try:
        while not talk.ended:
            event = await conn.recv()
            try:
                talk.receive(event)
            except UnexpectedMessage as exc:  # answered and logged; the job goes on
                await _refuse_unexpected(conn, exc, log, job)
                continue
            if isinstance(event, CancelJob):
                break
    except (NetError, ProtocolError) as exc:
        job.director_lost = str(exc)
        log.warning("director_lost", job=job.name, reason=str(exc))
    job.canceled.set()
    if job.sd is not None:
        await job.sd.close()


async def _report_progress(job: FdJob, conn: Connection) -> None:
    while True:
        await asyncio.sleep(PROGRESS_INTERVAL)
        current = b""
        if job.current:
            with contextlib.suppress(ProtocolError):
                current = decode_attributes(job.current).path
        await conn.send(
            JobProgress(job=job.name, files=job.files, bytes=job.bytes, current_file=current)
        )


async def _jmsg(conn: Connection, job: FdJob, level: str, text: str) -> None:
    with contextlib.suppress(NetError):
        await conn.send(JobMessage(job=job.name, level=level, text=text, time=time.time()))


async def _send_notes(conn: Connection, job: FdJob, stats: RestoreStats) -> None:
    """Each per-file error and warning the writer kept as a job message, then one line for the
    ones it only counted: a restore with thousands of bad files does not flood the Director."""
    for level, texts, total, kind in (
        ("error", stats.failed, stats.errors, "error(s)"),
        ("warning", stats.warnings, stats.warning_count, "warning(s)"),
    ):
        for text in texts:
            await _jmsg(conn, job, level, text)
        if total > len(texts):
            await _jmsg(
                conn,
                job,
                level,
                f"{total - len(texts)} more {kind} not listed (the first {len(texts)} are)",
            )


def _from_storage(talk: Conversation, msg: Message) -> Message:
    """A Storage Daemon's reply on a data session, checked against the session's table: one it
    does not allow ends the job with an error naming the state and the message."""
    try:
        talk.receive(msg)
    except UnexpectedMessage as exc:
        raise FdJobError(str(exc)) from exc
    return msg


def _next_batch(
    records: Iterator[Record], job: FdJob, batch_bytes: int = BATCH_BYTES
) -> list[Record] | None:
    """The next batch for the Storage Daemon: up to `batch_bytes` of payload, and at most
    MAX_BATCH_RECORDS records, so that a batch of tiny files does not hold (and make the SD
    decode) tens of thousands of record objects at once."""
    batch: list[Record] = []
    size = 0
    for record in records:
        batch.append(record)
        size += len(record.payload) + 16
        if record.stream == Stream.ATTRIBUTES:
            job.files += 1
            job.current = bytes(record.payload)
        elif record.stream in DATA_STREAMS:
            job.bytes += len(record.payload) - 8
        if size >= batch_bytes or len(batch) >= MAX_BATCH_RECORDS or job.canceled.is_set():
            return batch
    return batch or None


async def _backup(fd: FileDaemon, job: FdJob, conn: Connection, log: Any) -> tuple[str, str]:
    setup = job.setup
    assert job.sd is not None and setup.fileset is not None
    fileset = FileSetSpec.model_validate(setup.fileset)
    reader = BackupReader(
        fileset,
        level={"F": "Full", "I": "Incremental", "D": "Differential"}.get(setup.level, "Full"),
        since_ns=setup.since_ns,
        accurate=job.accurate if setup.accurate else None,
    )
    sd = job.sd
    talk = Conversation(
        f"File Daemon <- Storage Daemon (job {job.name}, backup data)",
        FD_FROM_APPENDING_SD,
        OPENING,
    )
    await sd.send(AppendOpen())
    reply = _from_storage(talk, await sd.recv_message())
    if isinstance(reply, ErrorReply):
        raise FdJobError(f"Storage Daemon refused the append session: {reply.code} {reply.text}")
    records = reader.records()
    batch_size = frame_batch_bytes(sd.limits.max_frame_size, BULK_BATCH_BYTES)
    while True:
        if job.canceled.is_set():
            raise FdJobError("job canceled")
        batch = await asyncio.to_thread(_next_batch, records, job, batch_size)
        if batch is None:
            break
        await sd.send_batch_frame(encode_batch_frame(batch, COALESCE_BELOW))
    await sd.send_signal(Signal.EOD)
    done = _from_storage(talk, await sd.recv_message())
    if isinstance(done, ErrorReply):
        raise FdJobError(f"Storage Daemon did not confirm the data: {done.code} {done.text}")
    stats = reader.stats
    job.read_bytes = stats.bytes
    job.errors = stats.errors
    job.warnings = len(stats.warnings)
    for warning in stats.warnings:
        await _jmsg(conn, job, "warning", warning)
    await sd.close(terminate=True)
    if stats.errors:
        return (
            "E" if stats.errors and not job.files else "W",
            f"{stats.errors} file(s) could not be read",
        )
    return ("W" if stats.warnings else "T"), ""


def _client_setting(fd: Any, name: str, default: Any) -> Any:
    """A directive of the File Daemon's own Client resource (its default for a daemon built
    without a configuration, as tests build one)."""
    client = getattr(getattr(fd, "config", None), "client", None)
    return getattr(client, name, default)


def default_where(working_directory: Path | None) -> Path:
    """Where a restore that names none writes: under the File Daemon's own working directory
    (created 0700 with every missing parent), never a shared directory such as /tmp."""
    return (working_directory or DEFAULT_WORKING_DIRECTORY) / "restores"


async def _restore(
    job: FdJob, msg: FdRestore, log: Any, where: Path, direct_io: bool = True
) -> tuple[str, str]:
    """Receive the Storage Daemon's records into a RestoreWriter. Whatever ends the restore (the
    end of the data, an SD error, cancel, a broken connection, a bug), the writer is finished or
    aborted before this returns or raises: descriptors closed, half-written files and hidden
    carriers removed, directory attributes set."""
    assert job.sd is not None
    sd = job.sd
    writer = await asyncio.to_thread(
        RestoreWriter,
        where,
        replace=msg.replace,
        hidden_indexes=msg.hidden_indexes,
        strip_prefix=msg.strip_prefix,
        add_prefix=msg.add_prefix,
        add_suffix=msg.add_suffix,
        regex_where=msg.regex_where,
        privileged_content=msg.privileged_content,
        same_client=msg.same_client,
        log=log,
        direct_io=direct_io,
    )
    if (
        writer.rejected is not None
    ):  # nothing can be restored: the SD's read session is never opened
        job.errors = writer.stats.errors
        await sd.close(terminate=True)
        return "E", writer.rejected
    why, failure = "the restore stopped", ""
    try:
        failure = await _receive(job, sd, writer)
        if failure:
            why = "the Storage Daemon failed"  # the file being received is discarded, not installed
        else:
            await asyncio.to_thread(writer.finish)
        await sd.close(terminate=True)
    except FdJobError as exc:
        why = str(exc)
        raise
    except (NetError, ProtocolError):
        why = "job canceled" if job.canceled.is_set() else "the Storage Daemon connection failed"
        raise
    finally:
        # A no-op after finish(). In a worker thread, shielded: a cancel while it runs does not stop
        # it, and it waits for a feed still running in its own thread (RestoreWriter's lock).
        stats = await asyncio.shield(
            asyncio.get_running_loop().run_in_executor(None, writer.abort, why)
        )
        job.notes = stats
        job.files = stats.files  # hidden hardlink carriers are not files of this restore
        job.errors = stats.errors
        job.warnings = stats.warning_count
    if failure:
        return "E", failure
    if stats.errors:
        return "E", f"{stats.errors} file(s) could not be restored"
    return "T", ""


async def _receive(job: FdJob, sd: Connection, writer: RestoreWriter) -> str:
    """Feed the read session's records to the writer until its EOD; the Storage Daemon's error text
    if it ended the session with one instead.

    Each record batch is decoded and written by `consume` where the connection receives it (the
    bulk connection's own thread, `Connection.receive_batches`), before the next one is read: the
    Storage Daemon goes on reading and sending meanwhile, into the socket's buffers. A cancel, a
    malformed batch or a writer failure raises there and ends the session at once."""
    talk = Conversation(
        f"File Daemon <- Storage Daemon (job {job.name}, restore data)", FD_FROM_READING_SD, OPENING
    )
    await sd.send(ReadOpen())
    reply = _from_storage(talk, await sd.recv_message())
    if isinstance(reply, ErrorReply):
        raise FdJobError(f"Storage Daemon refused the read session: {reply.code} {reply.text}")

    ended = False  # this session is over (a cancelled task): a batch still arriving is refused

    def consume(body: Body) -> None:
        if job.canceled.is_set() or ended:
            raise FdJobError("job canceled")
        records = decode_batch(body)
        talk.receive(records)
        job.files += sum(1 for r in records if r.stream == Stream.ATTRIBUTES)
        job.bytes += sum(len(r.payload) - 8 for r in records if r.stream in DATA_STREAMS)
        writer.feed_batch(records)

    if job.canceled.is_set():
        raise FdJobError("job canceled")
    try:
        event = await sd.receive_batches(consume)  # every batch, then what ends the session
    finally:
        # A cancelled task leaves the connection's thread receiving until the connection closes:
        # it stops at its next batch instead of counting it into a job that has ended.
        ended = True
    decoded = event if isinstance(event, Signal) else decode_body(event)
    try:
        talk.receive(decoded)
    except UnexpectedMessage as exc:  # the state is READING: "during the restore"
        if isinstance(decoded, Signal):
            raise FdJobError(f"Storage Daemon sent {exc.kind} during the restore") from exc
        raise FdJobError(f"unexpected {exc.kind!r} from the Storage Daemon") from exc
    if isinstance(decoded, ErrorReply):
        return f"Storage Daemon: {decoded.text}"
    return ""  # its EOD


def _estimate(job: FdJob, msg: FdEstimate) -> EstimateResult:
    assert job.setup.fileset is not None
    reader = BackupReader(
        FileSetSpec.model_validate(job.setup.fileset), level="Full", since_ns=None
    )
    files = 0
    size = 0
    listing: list[bytes] = []
    for record in reader.records():
        if record.stream == Stream.ATTRIBUTES:
            attrs = decode_attributes(record.payload)
            files += 1
            size += attrs.size
            if msg.listing and len(listing) < 10000:
                listing.append(attrs.path)
    return EstimateResult(code=Code.FD_OK, files=files, bytes=size, listing=tuple(listing))
