"""The Storage Daemon process: serves its Directors (status now; volumes and sessions build on it)."""

from __future__ import annotations

from typing import Final

from common.daemon import Daemon, OwnResource
from common.net import Connection
from common.peers import serve_director
from protocol.messages import Code, Hello

SD_PORT: Final = 9103


class StorageDaemon(Daemon):
    role = "storage"
    ok_code = Code.SD_OK
    default_port = SD_PORT

    @property
    def own(self) -> OwnResource:
        return self.config.storage  # type: ignore[no-any-return]

    def lookup_secret(self, hello: Hello) -> str | None:
        if hello.role != "director":
            return None
        director = self.config.directors.get(hello.name)
        return None if director is None else director.password.get_secret_value()

    async def serve_peer(self, conn: Connection, peer: Hello) -> None:
        await serve_director(self, conn, peer, self.log.bind(peer_name=peer.name))
