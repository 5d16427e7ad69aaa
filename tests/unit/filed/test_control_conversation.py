"""The File Daemon's command loop follows its conversation table (#12).

A real FileDaemon (built from a real configuration file) serves one end of a real connection over a
socketpair; the test plays the Director on the other end. A command out of place is answered with
an ErrorReply that names the state and the command, and logged; the loop goes on (or, inside the
accurate list, ends). Nothing is dropped without a word.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from common.link import Connection, Limits
from common.net import StreamConnection
from common.stream import FrameStream
from filed import control
from filed.accurate import AccurateEntry
from filed.config import load_client_config
from filed.control import FdJob, serve_director
from filed.daemon import FileDaemon
from protocol.frames import Signal
from protocol.jobs import (
    AccurateBatch,
    CancelJob,
    FdBackup,
    FdJobSetup,
    FdRestore,
    FdStorage,
    JobProgress,
    Ok,
)
from protocol.messages import Code, DaemonStatus, ErrorReply, Message, StatusRequest

JOB = "backup.2026-12-04_10.00.00_01"
WAIT = 10.0


async def _connection(sock: socket.socket, peer: str) -> Connection:
    loop = asyncio.get_running_loop()
    _transport, stream = await loop.create_connection(FrameStream, sock=sock)
    conn = StreamConnection(stream, Limits(), peer)
    conn.mark_authenticated()  # as after the handshake: full frame size, no heartbeats (interval 0)
    return conn


@dataclass
class Served:
    fd: FileDaemon
    director: Connection  # the test's end
    task: asyncio.Task[None]  # serve_director on the File Daemon's end

    async def ask(self, msg: Message | Signal) -> Message:
        await (
            self.director.send_signal(msg) if isinstance(msg, Signal) else self.director.send(msg)
        )
        return await self.director.recv_message(timeout=WAIT)

    async def finished(self) -> None:
        await asyncio.wait_for(self.task, WAIT)


def _daemon(tmp_path: Path) -> FileDaemon:
    conf = tmp_path / "bareos-fd.conf"
    conf.write_text(
        f'Client {{\n  Name = c-fd\n  TLS Enable = no\n  Working Directory = "{tmp_path}"\n}}\n'
        'Director {\n  Name = d\n  Password = "x"\n  TLS Enable = no\n}\n'
    )
    return FileDaemon(conf, load_client_config(conf), structlog.get_logger())


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Any]:
    started: list[Served] = []

    async def start(monitor: bool = False) -> Served:
        ours, theirs = socket.socketpair()
        fd = _daemon(tmp_path)
        fd_end = await _connection(theirs, "director")
        director = await _connection(ours, "client")
        task = asyncio.create_task(serve_director(fd, fd_end, monitor, structlog.get_logger()))
        served = Served(fd, director, task)
        started.append(served)
        return served

    yield start
    for served in started:
        await served.director.close()
        served.task.cancel()
        await asyncio.gather(served.task, return_exceptions=True)


def _refusal(reply: Message, state: str, kind: str) -> str:
    assert isinstance(reply, ErrorReply), reply
    assert reply.code == Code.FD_ERROR
    assert reply.text.startswith(
        f"File Daemon: File Daemon <- Director: unexpected {kind!r} in state {state!r} (allowed: "
    ), reply.text
    return reply.text


def _protocol_errors(logs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["state"], e["received"]) for e in logs if e["event"] == "protocol_error"]


async def test_commands_out_of_place_are_answered_named_and_logged(serve: Any) -> None:
    with capture_logs() as logs:
        s = await serve()
        text = _refusal(await s.ask(FdBackup()), "idle", "fd_backup")
        assert text.endswith("(allowed: TERMINATE, cancel, fd_job, fd_runscript, status)")
        assert isinstance(await s.ask(StatusRequest()), DaemonStatus)  # the loop goes on
        setup = FdJobSetup(job_id=1, job=JOB, job_type="B", level="F")
        assert isinstance(await s.ask(setup), Ok)
        _refusal(await s.ask(FdRestore(where=b"/tmp/x")), "set_up", "fd_restore")
        _refusal(await s.ask(setup), "set_up", "fd_job")  # one job per connection
        _refusal(await s.ask(Signal.EOD), "set_up", "EOD")
        _refusal(await s.ask(AccurateBatch(entries=())), "set_up", "accurate")
        assert list(s.fd.jobs) == [JOB]
        await s.director.send_signal(Signal.TERMINATE)
        await s.finished()
    assert s.fd.jobs == {}
    assert _protocol_errors(logs) == [
        ("idle", "fd_backup"),
        ("set_up", "fd_restore"),
        ("set_up", "fd_job"),
        ("set_up", "EOD"),
        ("set_up", "accurate"),
    ]


async def test_a_failed_storage_connection_leaves_the_job_set_up(serve: Any) -> None:
    """FdStorage the FD cannot carry out is refused: the conversation stays in set_up, so a backup
    cannot start without its Storage Daemon."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nobody listens there
    s = await serve()
    assert isinstance(await s.ask(FdJobSetup(job_id=1, job=JOB, job_type="B", level="F")), Ok)
    reply = await s.ask(FdStorage(address="127.0.0.1", port=port, key="k", tls=False))
    assert isinstance(reply, ErrorReply) and reply.code == Code.FD_JOB_REFUSED, reply
    assert "cannot connect to the Storage Daemon" in reply.text
    _refusal(await s.ask(FdBackup()), "set_up", "fd_backup")


async def test_the_accurate_list_is_taken_up_to_its_EOD(serve: Any) -> None:
    s = await serve()
    await s.director.send(FdJobSetup(job_id=1, job=JOB, job_type="B", level="I", accurate=True))
    await s.director.send(AccurateBatch(entries=((b"/a", 1, 2, 3, 0o100644),)))
    await s.director.send(AccurateBatch(entries=((b"/b", 4, 5, 6, 0o100600),)))
    await s.director.send_signal(Signal.EOD)
    assert isinstance(await s.director.recv_message(timeout=WAIT), Ok)
    job = s.fd.jobs[JOB]
    assert job.accurate is not None and len(job.accurate) == 2
    assert job.accurate.get(b"/b") == AccurateEntry(4, 5, 6, 0o100600)


async def test_a_stray_message_inside_the_accurate_list_ends_the_conversation(
    serve: Any,
) -> None:
    with capture_logs() as logs:
        s = await serve()
        await s.director.send(FdJobSetup(job_id=1, job=JOB, job_type="B", level="I", accurate=True))
        await s.director.send(AccurateBatch(entries=((b"/a", 1, 2, 3, 0o100644),)))
        reply = await s.ask(FdStorage(address="sd", port=1, key="k"))
        assert isinstance(reply, ErrorReply), reply
        assert reply.text.startswith(
            f"File Daemon: File Daemon <- Director (job {JOB}, accurate list): unexpected"
            " 'fd_storage' in state 'receiving' (allowed: EOD, TERMINATE, accurate)"
        ), reply.text
        await s.finished()  # the list is broken: nothing after it can be trusted
    assert s.fd.jobs == {}
    assert _protocol_errors(logs) == [("receiving", "fd_storage")]


async def test_a_terminate_inside_the_accurate_list_ends_quietly(serve: Any) -> None:
    with capture_logs() as logs:
        s = await serve()
        await s.director.send(FdJobSetup(job_id=1, job=JOB, job_type="B", level="I", accurate=True))
        await s.director.send(AccurateBatch(entries=((b"/a", 1, 2, 3, 0o100644),)))
        await s.director.send_signal(Signal.TERMINATE)
        await s.finished()
    assert s.fd.jobs == {}
    assert _protocol_errors(logs) == []


async def test_a_monitor_director_may_only_ask_for_status(serve: Any) -> None:
    s = await serve(monitor=True)
    reply = await s.ask(FdJobSetup(job_id=1, job=JOB, job_type="B", level="F"))
    assert isinstance(reply, ErrorReply) and reply.code == Code.FD_MONITOR_ONLY
    assert isinstance(await s.ask(StatusRequest()), DaemonStatus)
    assert s.fd.jobs == {}


async def test_a_running_job_answers_a_stray_command_and_goes_on_until_cancel() -> None:
    """While a job runs the Director's connection carries only CancelJob: anything else is
    answered with an ErrorReply naming the state, logged, and the job is not disturbed."""
    ours, theirs = socket.socketpair()
    director = await _connection(ours, "client")
    fd_end = await _connection(theirs, "director")
    job = FdJob(setup=FdJobSetup(job_id=1, job=JOB, job_type="B", level="F"))
    with capture_logs() as logs:
        watcher = asyncio.create_task(control._watch_control(job, fd_end, structlog.get_logger()))
        await director.send(StatusRequest())
        reply = await director.recv_message(timeout=WAIT)
        assert isinstance(reply, ErrorReply), reply
        assert (
            f"File Daemon <- Director (job {JOB}): unexpected 'status' in state 'running'"
            in reply.text
        )
        await director.send(JobProgress(job=JOB, files=1, bytes=1, current_file=b"/x"))
        reply = await director.recv_message(timeout=WAIT)
        assert isinstance(reply, ErrorReply) and "unexpected 'progress'" in reply.text, reply
        assert not job.canceled.is_set() and not watcher.done()
        await director.send(CancelJob(job=JOB))
        await asyncio.wait_for(watcher, WAIT)
    assert job.canceled.is_set() and job.director_lost == ""
    assert _protocol_errors(logs) == [("running", "status"), ("running", "progress")]
    await director.close()
    await fd_end.close()
