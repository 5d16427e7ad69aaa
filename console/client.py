"""Connect to a Director as a named (or the default) console and run commands."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.auth import authenticate_initiator
from common.daemon import client_ssl_context
from common.net import Connection, Limits, dial
from common.version import VERSION
from protocol.messages import Code, ConsoleCommand, ConsoleReply, ErrorReply, Hello

DEFAULT_CONSOLE = "*UserAgent*"


@dataclass(frozen=True)
class Credentials:
    """Who this console logs in as, and with which TLS settings."""

    console: str
    password: str
    tls_own: Any
    director: Any


def choose_credentials(
    config: Any, director_name: str | None, console_name: str | None
) -> Credentials:
    """Pick the Director and console: a named Console resource if any, else the Director's password."""
    directors = config.directors
    if director_name is not None:
        if director_name not in directors:
            raise LookupError(
                f"no Director resource named {director_name!r} in the console configuration"
            )
        director = directors[director_name]
    else:
        director = next(iter(directors.values()))
    consoles = [
        c
        for c in config.consoles.values()
        if (console_name is None or c.name == console_name)
        and (c.director in (None, director.name))
    ]
    if console_name is not None and not consoles:
        raise LookupError(
            f"no Console resource named {console_name!r} for Director {director.name!r}"
        )
    if consoles:
        console = consoles[0]
        return Credentials(console.name, console.password.get_secret_value(), console, director)
    return Credentials(DEFAULT_CONSOLE, director.password.get_secret_value(), director, director)


class ConsoleClient:
    """One authenticated session with the Director."""

    def __init__(self, conn: Connection, credentials: Credentials) -> None:
        self.conn = conn
        self.credentials = credentials

    @classmethod
    async def connect(cls, credentials: Credentials, limits: Limits | None = None) -> ConsoleClient:
        director = credentials.director
        conn = await dial(
            director.address,
            director.port,
            client_ssl_context(credentials.tls_own, director),
            limits or Limits(),
        )
        try:
            await authenticate_initiator(
                conn,
                Hello(role="console", name=credentials.console, version=VERSION),
                credentials.password,
            )
        except BaseException:
            await conn.close()
            raise
        return cls(conn, credentials)

    async def execute(
        self, line: str, on_more: Callable[[ConsoleReply], None] | None = None
    ) -> ConsoleReply:
        """Send one command and return its answer; the parts of a streamed answer (`more=True`,
        as `.events` sends) go to `on_more` as they arrive, and the final reply is returned.

        Without `on_more`, the parts of a long listing (`rows` set) are joined into the final
        reply's data, so a caller sees one answer whatever its size."""
        await self.conn.send(ConsoleCommand(line=line))
        reply = await self.conn.recv_message()
        joined: dict[str, list[Any]] = {}
        while isinstance(reply, ConsoleReply) and reply.more:
            if on_more is not None:
                on_more(reply)
            elif reply.rows is not None and isinstance(reply.data, list):
                joined.setdefault(reply.rows, []).extend(reply.data)
            reply = await self.conn.recv_message()
        if joined and isinstance(reply, ConsoleReply):
            reply = join_rows(reply, joined)
        if isinstance(reply, ErrorReply):
            return ConsoleReply(
                code=reply.code, ok=False, text=reply.text, data={"error": reply.text}
            )
        if not isinstance(reply, ConsoleReply):
            return ConsoleReply(
                code=Code.COMMAND_FAILED,
                ok=False,
                text=f"unexpected {reply.TYPE!r} reply",
                data=None,
            )
        return reply

    async def close(self) -> None:
        await self.conn.close(terminate=True)


def join_rows(reply: ConsoleReply, parts: dict[str, list[Any]]) -> ConsoleReply:
    """The final reply of a listing with the rows its streamed parts carried put in front."""
    data: dict[str, Any] = copy.deepcopy(reply.data) if isinstance(reply.data, dict) else {}
    for key, rows in parts.items():
        *path, last = key.split(".")  # `estimate.listing` is data["estimate"]["listing"]
        slot = data
        for name in path:
            inner = slot.get(name)
            slot[name] = inner = inner if isinstance(inner, dict) else {}
            slot = inner
        tail = slot.get(last)
        slot[last] = rows + (tail if isinstance(tail, list) else [])
    return reply.model_copy(update={"data": data})
