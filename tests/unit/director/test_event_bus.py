"""Job events: the bus fans out without blocking, slow readers lose the oldest events and are told,
and `.events` streams through the console server and ends its subscription however it ends."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest

from director.console import events_cmd
from director.console.registry import Args, CommandError, Reply, Session, parse_command
from director.console.server import serve_console
from director.events import EventBus
from protocol.frames import Signal
from protocol.messages import ConsoleCommand, ConsoleReply, Hello, Message


async def test_publish_numbers_events_and_fans_out_to_every_subscriber() -> None:
    bus = EventBus()
    unheard = bus.publish("job_status", jobid=1, status="C")  # nobody listening: not kept
    assert unheard["seq"] == 1
    assert unheard["event"] == "job_status"
    with bus.subscribe() as a, bus.subscribe() as b:
        assert bus.subscribers == 2
        bus.publish("job_status", jobid=1, status="R")
        bus.publish("job_status", jobid=1, status="T")
        for sub in (a, b):
            first, second = await sub.next(), await sub.next()
            assert (first["seq"], first["status"]) == (2, "R")
            assert (second["seq"], second["status"]) == (3, "T")
            assert isinstance(first["time"], float)
            assert "lost" not in first
    assert bus.subscribers == 0


async def test_a_slow_subscriber_drops_the_oldest_and_reports_how_many_it_lost() -> None:
    bus = EventBus()
    with bus.subscribe(backlog=3) as slow:
        for n in range(10):
            bus.publish("job_status", jobid=n)
        assert slow.queue.qsize() == 3
        first = await slow.next()
        assert first["jobid"] == 7
        assert first["lost"] == 7
        rest = [await slow.next(), await slow.next()]
        assert [e["jobid"] for e in rest] == [8, 9]
        assert all("lost" not in e for e in rest)  # reported once, then reset


async def test_publish_never_waits_for_a_full_subscriber_and_others_keep_everything() -> None:
    bus = EventBus()
    with bus.subscribe(backlog=1) as tiny, bus.subscribe(backlog=100) as roomy:
        for n in range(50):
            bus.publish("x", n=n)
        assert tiny.queue.qsize() == 1
        assert roomy.queue.qsize() == 50
        assert (await tiny.next())["lost"] == 49


async def test_unsubscribe_on_exit_and_on_error() -> None:
    bus = EventBus()
    with bus.subscribe():
        assert bus.subscribers == 1
    assert bus.subscribers == 0
    with pytest.raises(RuntimeError), bus.subscribe():
        raise RuntimeError("boom")
    assert bus.subscribers == 0
    bus.publish("x")  # no one left to offer to


# -- `.events` -------------------------------------------------------------------------------


def _session(allowed_jobs: set[str] | None = None) -> Session:
    bus = EventBus()

    def acl(kind: str, item: str) -> bool:
        return allowed_jobs is None or kind != "job" or item in allowed_jobs

    # what `.events` reads of the Director: the console's ACL lists (sees_every_job), the jobs it
    # holds (an event's job is looked up: its Client, Pool and FileSet are checked too), the catalog
    job_acl = ("*all*",) if allowed_jobs is None else tuple(sorted(allowed_jobs))
    every = ("*all*",)
    admin = SimpleNamespace(
        profile=(), job_acl=job_acl, client_acl=every, pool_acl=every, file_set_acl=every
    )

    async def get_job(job_id: int) -> None:  # no catalog rows: only held jobs are known
        return None

    director: Any = SimpleNamespace(
        name="test-dir",
        events=bus,
        busy=lambda conn: _NoBusy(),
        config=SimpleNamespace(consoles={"admin": admin}, profiles={}, jobs={}),
        queue=SimpleNamespace(jobs=_HELD),
        db=SimpleNamespace(get_job=get_job),
    )
    return Session(console="admin", acl=acl, director=director)


_HELD: dict[int, Any] = {}  # the jobs the Director holds, as `_job_event` announces them


class _NoBusy:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _job_event(bus: EventBus, jobid: int, status: str, name: str = "nightly") -> dict[str, Any]:
    _HELD[jobid] = SimpleNamespace(job_id=jobid, name=name, client=None, pool=None, fileset=None)
    return bus.publish(
        "job_status",
        jobid=jobid,
        job=f"{name}.2026-01-01_00.00.00_{jobid:02d}",
        name=name,
        type="B",
        level="F",
        old="C",
        status=status,
        wait_reason=None,
    )


async def _command(session: Session, line: str) -> Reply:
    args = parse_command(line)
    return await events_cmd.events(session, args)


async def test_events_stream_filters_and_ends_after_count() -> None:
    session = _session()
    bus = session.director.events
    reply = await _command(session, ".events jobid=2 count=2")
    assert reply.stream is not None
    hello = await anext(reply.stream)
    assert json.loads(hello.text)["event"] == "subscribed"
    assert bus.subscribers == 1
    for jobid, status in [(1, "R"), (2, "R"), (3, "R"), (2, "T"), (2, "A")]:
        _job_event(bus, jobid, status)
    parts = [part async for part in reply.stream]
    assert [(p.data["jobid"], p.data["status"]) for p in parts] == [(2, "R"), (2, "T")]
    assert [json.loads(p.text) for p in parts] == [p.data for p in parts]  # one JSON line each
    assert reply.data == {"events": {"sent": 2, "ended": "count"}}
    assert bus.subscribers == 0


async def test_events_job_filter_matches_the_unique_or_the_resource_name_and_obeys_the_acl() -> (
    None
):
    session = _session(allowed_jobs={"nightly"})
    bus = session.director.events
    reply = await _command(session, ".events job=nightly count=2")
    assert reply.stream is not None
    await anext(reply.stream)
    _job_event(bus, 1, "R", name="weekly")
    _job_event(bus, 2, "R", name="nightly")
    _HELD[3] = SimpleNamespace(job_id=3, name="nightly", client=None, pool=None, fileset=None)
    bus.publish(
        "job_status", jobid=3, job="nightly.2026-01-01_00.00.00_03", name="nightly", status="T"
    )
    parts = [part async for part in reply.stream]
    assert [p.data["jobid"] for p in parts] == [2, 3]

    hidden = _session(allowed_jobs={"weekly"})
    reply = await _command(hidden, ".events count=1 timeout=5")
    assert reply.stream is not None
    await anext(reply.stream)
    _job_event(hidden.director.events, 1, "R", name="nightly")  # not this console's to see
    _job_event(hidden.director.events, 2, "R", name="weekly")
    assert [p.data["jobid"] async for p in reply.stream] == [2]


async def test_events_stream_ends_at_its_timeout() -> None:
    session = _session()
    reply = await _command(session, ".events timeout=0.01")
    assert reply.stream is not None
    parts = [p async for p in reply.stream]
    assert [p.data["event"] for p in parts] == ["subscribed"]
    assert reply.data == {"events": {"sent": 0, "ended": "timeout"}}
    assert session.director.events.subscribers == 0


@pytest.mark.parametrize(
    "line",
    [
        ".events count=0",
        ".events count=x",
        ".events timeout=-1",
        ".events timeout=nan",
        ".events jobid=x",
    ],
)
async def test_events_refuses_bad_options(line: str) -> None:
    with pytest.raises(CommandError):
        await _command(_session(), line)


async def test_closing_an_unfinished_stream_unsubscribes() -> None:
    session = _session()
    reply = await _command(session, ".events")
    assert reply.stream is not None
    await anext(reply.stream)
    assert session.director.events.subscribers == 1
    await reply.stream.aclose()
    assert session.director.events.subscribers == 0
    assert reply.data == {"events": {"sent": 0, "ended": "interrupted"}}


# -- streaming through the console server, on an in-memory connection ---------------------------


class FakeConnection:
    """What serve_console needs of a Connection: the console's side is two queues."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[Message | Signal | Exception] = asyncio.Queue()
        self.sent: asyncio.Queue[Message] = asyncio.Queue()
        self.peer = "test"

    async def recv(self, timeout: float | None = None) -> Message | Signal:
        item = await self.inbox.get()
        if isinstance(item, Exception):
            raise item
        return item

    async def send(self, msg: Message) -> None:
        await self.sent.put(msg)

    async def reply(self) -> ConsoleReply:
        msg = await asyncio.wait_for(self.sent.get(), 5)
        assert isinstance(msg, ConsoleReply)
        return msg


def _log() -> Any:
    return SimpleNamespace(
        info=lambda *a, **k: None, warning=lambda *a, **k: None, exception=lambda *a, **k: None
    )


async def _serve(session_director: Any, conn: FakeConnection) -> asyncio.Task[None]:
    director: Any = session_director
    director.config = None
    hello = Hello(role="console", name="*UserAgent*", version="t")
    return asyncio.create_task(serve_console(director, conn, hello, _log()))  # type: ignore[arg-type]


async def test_server_streams_parts_with_more_then_the_final_reply() -> None:
    session = _session()
    director = session.director
    conn = FakeConnection()
    server = await _serve(director, conn)
    conn.inbox.put_nowait(ConsoleCommand(line=".events count=2"))
    hello = await conn.reply()
    assert hello.more
    assert json.loads(hello.text)["event"] == "subscribed"
    _job_event(director.events, 5, "R")
    _job_event(director.events, 5, "T")
    first, second, final = await conn.reply(), await conn.reply(), await conn.reply()
    assert (first.more, second.more, final.more) == (True, True, False)
    assert [first.data["status"], second.data["status"]] == ["R", "T"]
    assert final.ok
    assert final.data == {"events": {"sent": 2, "ended": "count"}}
    assert director.events.subscribers == 0
    conn.inbox.put_nowait(ConsoleCommand(line="version"))  # the session goes on as before
    conn.inbox.put_nowait(Signal.TERMINATE)
    await asyncio.wait_for(server, 5)


@pytest.mark.parametrize("hang_up", [Signal.TERMINATE, ConnectionError("gone")])
async def test_a_console_hanging_up_mid_stream_ends_the_subscription(
    hang_up: Signal | Exception,
) -> None:
    session = _session()
    director = session.director
    conn = FakeConnection()
    server = await _serve(director, conn)
    conn.inbox.put_nowait(ConsoleCommand(line=".events"))
    await conn.reply()
    assert director.events.subscribers == 1
    conn.inbox.put_nowait(hang_up)
    await asyncio.wait_for(server, 5)  # returns quietly: a hang-up mid-stream is normal
    assert director.events.subscribers == 0
    assert conn.sent.empty()  # no final reply to a console that is gone


async def test_a_command_mid_stream_ends_the_stream_and_is_then_answered() -> None:
    session = _session()
    director = session.director
    conn = FakeConnection()
    server = await _serve(director, conn)
    conn.inbox.put_nowait(ConsoleCommand(line=".events"))
    await conn.reply()
    conn.inbox.put_nowait(ConsoleCommand(line=".events count=1"))
    final = await conn.reply()
    assert not final.more
    assert final.data == {"events": {"sent": 0, "ended": "interrupted"}}
    hello = await conn.reply()  # the second command runs next
    assert hello.more
    assert director.events.subscribers == 1
    _job_event(director.events, 1, "R")
    assert (await conn.reply()).data["jobid"] == 1
    assert (await conn.reply()).data == {"events": {"sent": 1, "ended": "count"}}
    conn.inbox.put_nowait(Signal.TERMINATE)
    await asyncio.wait_for(server, 5)
    assert director.events.subscribers == 0


async def test_a_cancelled_server_ends_the_subscription() -> None:
    session = _session()
    director = session.director
    conn = FakeConnection()
    server = await _serve(director, conn)
    conn.inbox.put_nowait(ConsoleCommand(line=".events"))
    await conn.reply()
    server.cancel()
    with pytest.raises(asyncio.CancelledError):
        await server
    assert director.events.subscribers == 0


def test_args_of_events_are_parsed_as_options() -> None:
    args = parse_command(".events jobid=3 job=nightly count=5 timeout=60")
    assert isinstance(args, Args)
    assert args.command == ".events"
    assert args.options == {"jobid": "3", "job": "nightly", "count": "5", "timeout": "60"}
