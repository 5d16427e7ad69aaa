"""The File Daemon's restore session always ends with a JobEnd and a closed writer (#11, item 7).

`serve_director` is driven through a restore with fakes for the Director's connection and the
Storage Daemon's data connection: whatever ends the restore (a rejected writer, the SD's error, a
cancel, a protocol error, a bug, the task itself cancelled), the Director gets one JobEnd saying
why (except when the task is cancelled: nobody is left to send it), the file being written is
discarded, directory attributes are set and nothing hidden or open is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from common.link import Body, ConnectionClosed, is_batch
from filed import control
from filed.control import FdJob, serve_director
from filed.restore import MAX_NOTES, RestoreStats, RestoreWriter
from protocol import codec
from protocol.attributes import FileType
from protocol.frames import Signal
from protocol.jobs import (
    CancelJob,
    FdJobSetup,
    FdRestore,
    FdStorage,
    JobEnd,
    JobMessage,
    Ok,
    ReadOpen,
)
from protocol.messages import Code, ErrorReply, Message, encode_message
from protocol.records import Record, Stream, encode_batch, pack_data
from tests.unit.filed.test_restore_faults import (
    AFTER,
    BEFORE,
    MTIME,
    _corrupt_last_chunk,
    attributes,
    file_records,
    leftovers,
    open_fds,
)

JOB = "restore.2026-12-04_10.00.00_01"
Event = Message | Signal | BaseException


class FakeDirector:
    """The Director's side of the control connection: what it sends is queued, what the FD sends
    is kept."""

    peer = "director"

    def __init__(self, *events: Message) -> None:
        self.inbox: asyncio.Queue[Event] = asyncio.Queue()
        for event in events:
            self.inbox.put_nowait(event)
        self.sent: list[Message] = []

    async def recv(self, timeout: float | None = None) -> Message | Signal:
        item = await self.inbox.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def send(self, msg: Message) -> None:
        self.sent.append(msg)

    def of(self, kind: type[Message]) -> list[Any]:
        return [m for m in self.sent if isinstance(m, kind)]

    def end(self) -> JobEnd:
        (end,) = self.of(JobEnd)
        return cast(JobEnd, end)

    def messages(self, level: str | None = None) -> list[str]:
        return [m.text for m in self.of(JobMessage) if level is None or m.level == level]


class FakeStorage:
    """The Storage Daemon's read session: a ReadOpen is answered Ok, then the scripted frames
    follow; once they run out (`drained`: everything before was fed) it waits until the connection
    is closed."""

    peer = "storage"

    def __init__(self, *events: bytes | Signal | BaseException) -> None:
        self.events: asyncio.Queue[bytes | Signal | BaseException] = asyncio.Queue()
        for event in events:
            self.events.put_nowait(event)
        self.sent: list[Message] = []
        self.closed = False
        self.terminated = False
        self.drained = asyncio.Event()

    async def send(self, msg: Message) -> None:
        self.sent.append(msg)

    async def recv_message(self, timeout: float | None = None) -> Message:
        assert isinstance(self.sent[-1], ReadOpen)
        return Ok(code=Code.SD_OK, text="OK data")

    async def recv_event(self, timeout: float | None = None) -> bytes | Signal:
        if self.events.empty():
            self.drained.set()
        item = await self.events.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def receive_batches(self, consume: Callable[[Body], None]) -> Body | Signal:
        """As a plain Connection does: batches consumed in a worker thread, one at a time."""
        while True:
            event = await self.recv_event()
            if not is_batch(event):
                return event
            await asyncio.to_thread(consume, event)

    async def close(self, terminate: bool = False) -> None:
        if not self.closed:
            self.closed, self.terminated = True, terminate
            self.events.put_nowait(ConnectionClosed("connection already closed"))


class FakeLog:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def bind(self, **kw: Any) -> FakeLog:
        return self

    def __getattr__(self, level: str) -> Any:
        return lambda event, **kw: self.events.append((level, event, kw))


class FakeDaemon:
    def __init__(self) -> None:
        self.jobs: dict[str, FdJob] = {}

    @contextlib.contextmanager
    def busy(self, conn: object) -> Iterator[None]:
        yield


@pytest.fixture
def no_leaks(tmp_path: Path) -> Iterator[None]:
    before = open_fds()
    yield
    assert open_fds() == before
    assert leftovers(tmp_path) == []


def batch(records: list[Record]) -> bytes:
    return encode_batch(records)


def sd_error(text: str) -> bytes:
    return encode_message(ErrorReply(code=Code.SD_ERROR, text=text))


async def start(
    sd: FakeStorage,
    where: Path,
    monkeypatch: pytest.MonkeyPatch,
    **restore: Any,
) -> tuple[FakeDirector, FakeLog, asyncio.Task[None]]:
    """serve_director running a restore into `where` with `sd` as its Storage Daemon."""

    async def connect_storage(
        fd: object, job: FdJob, msg: FdStorage, conn: FakeDirector, log: object
    ) -> None:
        job.sd = cast(Any, sd)
        await conn.send(Ok(code=Code.FD_OK, text="OK storage"))

    monkeypatch.setattr(control, "_connect_storage", connect_storage)
    director = FakeDirector(
        FdJobSetup(job_id=1, job=JOB, job_type="R", level=" "),
        FdStorage(address="sd", port=9103, key="k"),
        FdRestore(where=os.fsencode(where), **restore),
    )
    log = FakeLog()
    task = asyncio.create_task(
        serve_director(cast(Any, FakeDaemon()), cast(Any, director), False, log)
    )
    return director, log, task


async def restore(
    sd: FakeStorage,
    where: Path,
    monkeypatch: pytest.MonkeyPatch,
    **restore: Any,
) -> tuple[FakeDirector, FakeLog]:
    director, log, task = await start(sd, where, monkeypatch, **restore)
    await asyncio.wait_for(task, 10)
    return director, log


def with_directory(*records: Record) -> list[Record]:
    """A directory (mode 0750) holding the files: its attributes are set only at the end."""
    return [
        Record(1, Stream.ATTRIBUTES, attributes(b"/src", kind=FileType.DIRECTORY, mode=0o750)),
        *records,
    ]


def assert_directory_finished(where: Path) -> None:
    st = (where / "src").stat()
    assert stat.S_IMODE(st.st_mode) == 0o750 and st.st_mtime_ns == MTIME


# -- 1. a rejected writer --------------------------------------------------------------------------


@pytest.mark.usefixtures("no_leaks")
@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"regex_where": "!a(!b!"}, "bad regexwhere expression '!a(!b!'"),
        ({"replace": "sometimes"}, "unknown replace policy 'sometimes'"),
        ({"where_under_a_file": True}, "cannot create"),
    ],
)
async def test_a_rejected_restore_ends_E_without_opening_the_read_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: dict[str, Any], problem: str
) -> None:
    where = tmp_path / "where"
    if options.pop("where_under_a_file", False):
        (tmp_path / "file").write_text("")
        where = tmp_path / "file" / "where"
    sd = FakeStorage(batch(file_records(1, b"/src/before", BEFORE)), Signal.EOD)
    director, _log = await restore(sd, where, monkeypatch, **options)
    end = director.end()
    assert (
        end.status == "E" and end.text.startswith("restore rejected: ") and problem in end.text
    ), end
    assert end.errors == 1 and end.files == 0
    assert sd.sent == [] and sd.terminated  # no ReadOpen: the SD never sends the stream
    assert director.messages() == [end.text]
    assert "could not be restored" not in str(director.sent)
    assert not where.exists()


# -- 2. the Storage Daemon's error -----------------------------------------------------------------


@pytest.mark.usefixtures("no_leaks")
async def test_an_sd_error_discards_the_half_received_file_and_keeps_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = tmp_path / "where"
    (where / "src").mkdir(parents=True)
    (where / "src" / "half").write_bytes(b"the old content")
    half = file_records(3, b"/src/half", b"h" * 10000)[
        :2
    ]  # attributes and the first of three chunks
    sd = FakeStorage(
        batch(with_directory(*file_records(2, b"/src/before", BEFORE), *half)),
        sd_error("error reading volume Full-0001: bad block"),
    )
    director, _log = await restore(sd, where, monkeypatch)
    end = director.end()
    assert (end.status, end.text) == (
        "E",
        "Storage Daemon: error reading volume Full-0001: bad block",
    )
    assert (where / "src" / "half").read_bytes() == b"the old content"
    assert (where / "src" / "before").read_bytes() == BEFORE
    assert_directory_finished(where)
    assert director.messages("error") == [
        "/src/half: the Storage Daemon failed before its data was complete; not restored",
        end.text,
    ]
    assert sd.terminated


# -- 3. cancel, protocol errors, a broken connection, the task cancelled -------------------------


@pytest.mark.usefixtures("no_leaks")
async def test_a_cancel_mid_file_aborts_the_writer_and_ends_A(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = tmp_path / "where"
    sd = FakeStorage(batch(with_directory(*file_records(2, b"/src/half", b"h" * 10000)[:2])))
    director, _log, task = await start(sd, where, monkeypatch)
    await sd.drained.wait()  # the file's first records are received, and written in a worker:
    for _ in range(500):  # bounded: 5 s at most
        if (where / "src" / "half").exists():
            break
        await asyncio.sleep(0.01)
    assert (where / "src" / "half").exists()  # under its own name: nothing was there
    director.inbox.put_nowait(CancelJob(job=JOB))
    await asyncio.wait_for(task, 10)
    end = director.end()
    assert end.status == "A", end
    assert not (where / "src" / "half").exists()
    assert_directory_finished(where)
    assert director.messages("error") == [
        "/src/half: job canceled before its data was complete; not restored",
        "Storage Daemon connection failed: connection already closed",
    ]


@pytest.mark.usefixtures("no_leaks")
@pytest.mark.parametrize(
    ("fault", "text"),
    [
        (Signal.BREAK, "Storage Daemon sent BREAK during the restore"),
        (encode_message(Ok(code=Code.SD_OK, text="?")), "unexpected 'ok' from the Storage Daemon"),
        (
            ConnectionClosed("connection closed by the Storage Daemon at sd:9103"),
            "Storage Daemon connection failed: connection closed by the Storage Daemon at sd:9103",
        ),
    ],
)
async def test_a_broken_stream_ends_E_with_the_writer_aborted(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: bytes | Signal | BaseException,
    text: str,
) -> None:
    where = tmp_path / "where"
    half = file_records(3, b"/src/half", b"h" * 10000)[:2]
    sd = FakeStorage(batch(with_directory(*file_records(2, b"/src/before", BEFORE), *half)), fault)
    director, _log = await restore(sd, where, monkeypatch)
    end = director.end()
    assert (end.status, end.text) == ("E", text)
    assert (end.files, end.errors) == (2, 1)  # the directory and before; half is reported
    assert not (where / "src" / "half").exists()
    assert (where / "src" / "before").read_bytes() == BEFORE
    assert_directory_finished(where)
    assert len(director.messages("error")) == 2


@pytest.mark.usefixtures("no_leaks")
async def test_an_unforeseen_failure_still_sends_a_JobEnd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = tmp_path / "where"
    records = with_directory(*file_records(2, b"/src/half", b"h" * 10000)[:2])
    real_feed = RestoreWriter.feed_batch

    def feed_then_fail(writer: RestoreWriter, records: Iterable[Record]) -> None:
        real_feed(writer, records)
        raise KeyError("a bug")

    monkeypatch.setattr(RestoreWriter, "feed_batch", feed_then_fail)
    director, log = await restore(FakeStorage(batch(records)), where, monkeypatch)
    end = director.end()
    assert (end.status, end.text) == ("E", "internal error: KeyError('a bug')")
    assert ("exception", "job_crashed", {"job": JOB}) in log.events
    assert not (where / "src" / "half").exists()
    assert_directory_finished(where)


@pytest.mark.usefixtures("no_leaks")
async def test_a_cancelled_task_aborts_the_writer_after_the_feed_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The File Daemon stopping cancels the session while a worker thread writes a chunk: the
    abort waits for that write (the writer's lock), then discards the file and sets directories."""
    where = tmp_path / "where"
    writing, release, aborting = threading.Event(), threading.Event(), threading.Event()
    real_pwrite, real_abort = os.pwrite, RestoreWriter.abort

    def slow_pwrite(fd: int, data: Any, offset: int) -> int:
        if not writing.is_set():
            writing.set()
            release.wait(10)
        return real_pwrite(fd, data, offset)

    writers: list[RestoreWriter] = []

    def abort(writer: RestoreWriter, why: str = "") -> RestoreStats:
        writers.append(writer)
        aborting.set()
        return real_abort(writer, why)

    monkeypatch.setattr(os, "pwrite", slow_pwrite)
    monkeypatch.setattr(RestoreWriter, "abort", abort)
    sd = FakeStorage(batch(with_directory(*file_records(2, b"/src/half", b"h" * 10000))))
    director, _log, task = await start(sd, where, monkeypatch)
    await asyncio.to_thread(writing.wait, 10)
    task.cancel()
    await asyncio.to_thread(
        aborting.wait, 10
    )  # the abort runs in its thread, waiting for the write
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    assert director.of(JobEnd) == []
    # one failure: the write finished before the abort closed its descriptor (no EBADF, no write
    # into a descriptor number reused meanwhile)
    assert writers[0].stats.failed == [
        "/src/half: the restore stopped before its data was complete; not restored"
    ]
    assert not (where / "src" / "half").exists()
    assert_directory_finished(where)


# -- 4. per-file failures reach the Director as errors, bounded ------------------------------------


@pytest.mark.usefixtures("no_leaks")
async def test_file_failures_are_error_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = tmp_path / "where"
    records = [
        *file_records(1, b"/src/before", BEFORE),
        *_corrupt_last_chunk(file_records(2, b"/src/bad", b"y" * 10000)),
        *file_records(3, b"/src/after", AFTER),
    ]
    director, _log = await restore(FakeStorage(batch(records), Signal.EOD), where, monkeypatch)
    end = director.end()
    assert (end.status, end.files, end.errors) == ("E", 2, 1)
    assert end.text == "1 file(s) could not be restored"
    assert director.messages("warning") == []
    (failure, summary) = director.messages("error")
    assert (
        failure.startswith("/src/bad: corrupt compressed chunk at offset 8192")
        and summary == end.text
    )
    assert (where / "src" / "after").read_bytes() == AFTER


@pytest.mark.usefixtures("no_leaks")
async def test_thousands_of_bad_files_send_a_bounded_number_of_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = 2500
    orphans = [
        Record(10 + i, Stream.DATA, pack_data(0, b"x")) for i in range(bad)
    ]  # each one error
    director, _log = await restore(
        FakeStorage(batch([*file_records(1, b"/src/ok", b"ok"), *orphans]), Signal.EOD),
        tmp_path / "where",
        monkeypatch,
    )
    end = director.end()
    assert (end.status, end.errors, end.files) == ("E", bad, 1)
    errors = director.messages("error")
    assert len(errors) == MAX_NOTES + 2
    assert errors[0] == "record for file index 10 arrived without its attributes; dropped"
    assert (
        errors[MAX_NOTES]
        == f"{bad - MAX_NOTES} more error(s) not listed (the first {MAX_NOTES} are)"
    )
    assert errors[-1] == f"{bad} file(s) could not be restored"


@pytest.mark.usefixtures("no_leaks")
async def test_warnings_are_sent_as_warnings_and_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(path: Any, name: Any, value: Any, *, follow_symlinks: bool = True) -> None:
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(os, "setxattr", refuse)
    records: list[Record] = []
    for i in range(1, MAX_NOTES + 6):
        records += file_records(i, b"/src/f%d" % i, b"data")
        records.insert(len(records) - 1, Record(i, Stream.XATTRS, codec.pack([[b"user.a", b"v"]])))
    director, _log = await restore(
        FakeStorage(batch(records), Signal.EOD), tmp_path / "where", monkeypatch
    )
    end = director.end()
    assert (end.status, end.errors, end.warnings, end.files) == (
        "T",
        0,
        MAX_NOTES + 5,
        MAX_NOTES + 5,
    )
    warnings = director.messages("warning")
    assert len(warnings) == MAX_NOTES + 1 and director.messages("error") == []
    assert warnings[0] == "/src/f1: cannot restore xattr user.a: Operation not supported"
    assert warnings[-1] == f"5 more warning(s) not listed (the first {MAX_NOTES} are)"
