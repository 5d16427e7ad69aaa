"""Serve one authenticated console: ACLs, command dispatch, replies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from common.net import Connection
from director.console import (  # noqa: F401  (register commands)
    catalog_cmd,
    jobs_cmd,
    media_cmd,
    misc_cmd,
    restore_cmd,
    show_cmd,
    status_cmd,
)
from director.console.acl import ALL, acl_allows
from director.console.registry import CommandError, Reply, Session, lookup, parse_command
from protocol.frames import Signal
from protocol.messages import Code, ConsoleCommand, ConsoleReply, ErrorReply, Hello

if TYPE_CHECKING:
    from director.daemon import DirectorDaemon

DEFAULT_CONSOLE: Final = "*UserAgent*"
ALWAYS_ALLOWED: Final = frozenset({"quit", "exit", ".quit", "whoami", ".api"})
_ACL_FIELDS: Final = {
    "command": "command_acl",
    "job": "job_acl",
    "client": "client_acl",
    "storage": "storage_acl",
    "schedule": "schedule_acl",
    "pool": "pool_acl",
    "fileset": "file_set_acl",
    "catalog": "catalog_acl",
    "where": "where_acl",
}


def make_acl(director: DirectorDaemon, console_name: str) -> Any:
    """The ACL check for a console: the default console may do everything."""
    if console_name == DEFAULT_CONSOLE:
        return lambda kind, item: True
    config = director.config
    console = config.consoles[console_name]
    holders = [console] + [config.profiles[p] for p in console.profile if p in config.profiles]

    def check(kind: str, item: str) -> bool:
        if kind == "command" and item in ALWAYS_ALLOWED:
            return True
        field = _ACL_FIELDS[kind]
        lists = [getattr(holder, field) for holder in holders]
        return acl_allows(lists, item)

    return check


async def serve_console(director: DirectorDaemon, conn: Connection, peer: Hello, log: Any) -> None:
    session = Session(console=peer.name, acl=make_acl(director, peer.name), director=director)
    while not session.quit:
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
            try:
                answer = ConsoleReply(
                    code=Code.DIR_OK if reply.ok else Code.COMMAND_FAILED,
                    ok=reply.ok,
                    text=reply.text,
                    data=reply.data,
                    prompt=reply.prompt,
                )
                await conn.send(answer)
            except (ValueError, TypeError) as exc:  # a reply that cannot be encoded is a bug, not a hang-up
                log.exception("console_reply_unencodable", command=event.line)
                await conn.send(ConsoleReply(code=Code.COMMAND_FAILED, ok=False,
                                             text=f"internal error encoding the reply: {exc}", data=None))


async def run_command(session: Session, line: str, log: Any) -> Reply:
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


__all__ = ["ALL", "DEFAULT_CONSOLE", "make_acl", "run_command", "serve_console"]
