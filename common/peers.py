"""The command loop a File or Storage Daemon runs for an authenticated Director."""

from __future__ import annotations

from typing import Any

from common.daemon import Daemon
from common.net import Connection
from protocol.frames import Signal
from protocol.messages import Code, ErrorReply, Hello, StatusRequest


async def serve_director(daemon: Daemon[Any], conn: Connection, peer: Hello, log: Any) -> None:
    """Answer the Director's commands until it hangs up (status only, for now)."""
    if peer.role != "director":
        await conn.send(
            ErrorReply(code=Code.COMMAND_FAILED, text=f"a {peer.role} cannot use this daemon")
        )
        return
    while True:
        event = await conn.recv()
        if event is Signal.TERMINATE:
            return
        with daemon.busy(conn):
            match event:
                case StatusRequest():
                    await conn.send(daemon.status())
                case Signal.STATUS:
                    await conn.send(daemon.status())
                case Signal():
                    log.debug("signal_ignored", signal=event.name)
                case _:
                    log.warning("unknown_command", message=event.TYPE)
                    await conn.send(
                        ErrorReply(
                            code=Code.UNKNOWN_COMMAND, text=f"unknown command {event.TYPE!r}"
                        )
                    )
