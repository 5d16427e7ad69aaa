"""The File Daemon process: serves its Directors (status now; backup and restore build on it)."""

from __future__ import annotations

from typing import Final

from common.daemon import Daemon, OwnResource
from common.net import Connection
from common.peers import serve_director
from protocol.messages import Code, Hello

FD_PORT: Final = 9102


class FileDaemon(Daemon):
    role = "client"
    ok_code = Code.FD_OK
    default_port = FD_PORT

    @property
    def own(self) -> OwnResource:
        return self.config.client  # type: ignore[no-any-return]

    def lookup_secret(self, hello: Hello) -> str | None:
        if hello.role != "director":
            return None
        director = self.config.directors.get(hello.name)
        return None if director is None else director.password.get_secret_value()

    async def serve_peer(self, conn: Connection, peer: Hello) -> None:
        await serve_director(self, conn, peer, self.log.bind(peer_name=peer.name))
