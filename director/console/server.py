"""Serve one authenticated console: ACLs, command dispatch, replies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, Final

from common.logging import Log
from common.net import Connection
from director.catalog import CatalogError
from director.console import (  # noqa: F401  (register commands)
    catalog_cmd,
    events_cmd,
    jobs_cmd,
    media_cmd,
    misc_cmd,
    restore_cmd,
    show_cmd,
    status_cmd,
)
from director.console.acl import ALL, DEFAULT_CONSOLE, acl_allows, acl_lists
from director.console.registry import CommandError, Reply, Session, lookup, parse_command
from protocol.errors import FrameTooLarge
from protocol.frames import Signal
from protocol.messages import Code, ConsoleCommand, ConsoleReply, ErrorReply, Hello, Message

if TYPE_CHECKING:
    from director.daemon import DirectorDaemon

ALWAYS_ALLOWED: Final = frozenset({"quit", "exit", ".quit", "whoami", ".api"})


def make_acl(director: DirectorDaemon, console_name: str) -> Callable[[str, str], bool]:
    """The ACL check for a console: the default console may do everything."""
    if console_name == DEFAULT_CONSOLE:
        return lambda kind, item: True
    config = director.config

    def check(kind: str, item: str) -> bool:
        if kind == "command" and item in ALWAYS_ALLOWED:
            return True
        return acl_allows(acl_lists(config, console_name, kind), item)

    return check


async def serve_console(director: DirectorDaemon, conn: Connection, peer: Hello, log: Log) -> None:
    session = Session(console=peer.name, acl=make_acl(director, peer.name), director=director)
    incoming: asyncio.Task[Message | Signal] | None = None  # a read begun while a stream ran
    try:
        while not session.quit:
            if incoming is not None:
                event, incoming = await incoming, None
            else:
                event = await conn.recv()
            if event is Signal.TERMINATE:
                return
            if isinstance(event, Signal):
                continue
            if not isinstance(event, ConsoleCommand):
                await conn.send(
                    ErrorReply(code=Code.UNKNOWN_COMMAND, text=f"unexpected {event.TYPE!r}")
                )
                continue
            with director.busy(conn):
                pending, session.pending = session.pending, None
                if pending is not None:
                    try:
                        reply = await pending(event.line.strip())
                    except CommandError as exc:
                        reply = Reply(text=str(exc), data={"error": str(exc)}, ok=False)
                else:
                    reply = await run_command(session, event.line, log)
                if reply.stream is None:
                    await _answer(conn, reply, event.line, log)
                    continue
            # A stream runs outside `busy`: a stop does not wait for an `.events` console.
            incoming = await send_stream(conn, reply.stream, log, on_error=_failed(reply))
            if incoming is None:
                log.info("console_stream_hung_up", command=event.line)
                return
            await _answer(conn, reply, event.line, log)
    finally:
        if incoming is not None:
            await _discard(incoming)


async def _discard(task: asyncio.Task[Any]) -> None:
    """Cancel a read nobody will use; a failure it already had is consumed, not left unretrieved."""
    if not task.done():
        task.cancel()
        await asyncio.wait({task})
    if not task.cancelled():
        task.exception()


async def _answer(conn: Connection, reply: Reply, line: str, log: Log, more: bool = False) -> None:
    """Send one reply; one that cannot be encoded is a bug reported to the console, not a hang-up."""
    try:
        answer = ConsoleReply(
            code=Code.DIR_OK if reply.ok else Code.COMMAND_FAILED,
            ok=reply.ok,
            text=reply.text,
            data=reply.data,
            prompt=reply.prompt,
            more=more,
            rows=reply.rows if more else None,
        )
        await conn.send(answer)
    except (ValueError, TypeError, FrameTooLarge) as exc:
        log.exception("console_reply_unencodable", command=line)
        await conn.send(
            ConsoleReply(
                code=Code.COMMAND_FAILED,
                ok=False,
                more=more,
                text=f"internal error encoding the reply: {exc}",
                data=None,
            )
        )


async def _next_part(stream: AsyncGenerator[Reply, None]) -> Reply | None:
    try:
        return await anext(stream)
    except StopAsyncIteration:
        return None


def _failed(reply: Reply) -> Callable[[Exception], None]:
    """What a stream that raised leaves in its final reply: an error the console can show."""

    def fail(exc: Exception) -> None:
        reply.ok = False
        message = (
            f"catalog error: {exc}" if isinstance(exc, CatalogError) else f"internal error: {exc!r}"
        )
        reply.text = f"{reply.text}\n{message}".lstrip("\n")
        reply.data = {"error": message}

    return fail


async def send_stream(
    conn: Connection,
    stream: AsyncGenerator[Reply, None],
    log: Log,
    on_error: Callable[[Exception], None] | None = None,
) -> asyncio.Task[Message | Signal] | None:
    """Send each part of a streamed answer with `more=True`, while watching the console.

    Returns the console's pending (or already finished) next read when the stream ends or is
    interrupted by a command or signal, which the caller handles next; None when the console hung
    up. The stream is closed in every case, so its subscriptions end with it.
    """
    incoming: asyncio.Task[Message | Signal] = asyncio.create_task(conn.recv())
    try:
        while True:
            part = asyncio.create_task(_next_part(stream))
            try:
                await asyncio.wait({part, incoming}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not part.done():
                    part.cancel()
                    await asyncio.wait({part})
            if incoming.done():
                if not part.cancelled():
                    part.exception()  # an item (or a failure) that raced the console is dropped
                if incoming.cancelled() or incoming.exception() is not None:
                    return None
                return None if incoming.result() is Signal.TERMINATE else incoming
            try:
                item = part.result()
            except Exception as exc:  # a failing stream ends with an error reply, not a hang-up
                log.exception("console_stream_failed")
                if on_error is not None:
                    on_error(exc)
                return incoming
            if item is None:
                return incoming
            await _answer(conn, item, "(stream)", log, more=True)
    except BaseException:
        await _discard(incoming)
        raise
    finally:
        await stream.aclose()


async def run_command(session: Session, line: str, log: Log) -> Reply:
    """Parse, authorise and run one console command line."""
    try:
        args = parse_command(line.strip())
        if not args.command:
            return Reply(text="", data={})
        cmd = lookup(args.command)
        if cmd is None:
            return Reply(
                text=f"{args.command}: is an invalid command.",
                data={"error": "invalid command"},
                ok=False,
            )
        if not session.acl("command", cmd.name):
            log.warning("console_command_denied", console=session.console, command=cmd.name)
            return Reply(
                text=f"{cmd.name}: is an invalid command or needs access right.",
                ok=False,
                data={"error": "access denied"},
            )
        log.info("console_command", console=session.console, command=cmd.name)
        return await cmd.handler(session, args)
    except CommandError as exc:
        return Reply(text=str(exc), data={"error": str(exc)}, ok=False)
    except CatalogError as exc:
        log.error(
            "console_command_catalog_error",
            command=line.split(maxsplit=1)[0] if line.split() else "",
            error=str(exc),
        )
        return Reply(text=f"catalog error: {exc}", data={"error": str(exc)}, ok=False)
    except (
        Exception
    ) as exc:  # a command's bug must not hang up on the operator: say so, keep the session
        log.exception(
            "console_command_crashed", command=line.split(maxsplit=1)[0] if line.split() else ""
        )
        return Reply(
            text=f"internal error running {line.split(maxsplit=1)[0] if line.split() else 'command'}: {exc!r}; "
            "see the Director's log",
            data={"error": "internal error"},
            ok=False,
        )


__all__ = ["ALL", "DEFAULT_CONSOLE", "make_acl", "run_command", "serve_console"]
