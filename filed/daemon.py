"""The File Daemon process: serves its Directors' backup, restore and estimate commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from common.config.loader import Loaded
from common.daemon import Daemon, OwnResource
from common.logging import Log
from common.net import Connection
from filed.config import FileDaemonConfig
from filed.control import serve_director
from protocol.messages import Code, ErrorReply, Hello, RunningJob

if TYPE_CHECKING:
    from filed.control import FdJob

FD_PORT: Final = 9102


class FileDaemon(Daemon[FileDaemonConfig]):
    role = "client"
    ok_code = Code.FD_OK
    default_port = FD_PORT

    def __init__(self, config_path: Path, loaded: Loaded[FileDaemonConfig], log: Log) -> None:
        super().__init__(config_path, loaded, log)
        self.jobs: dict[str, FdJob] = {}

    @property
    def own(self) -> OwnResource:
        return self.config.client

    def lookup_secret(self, hello: Hello) -> str | None:
        if hello.role != "director":
            return None
        director = self.config.directors.get(hello.name)
        return None if director is None else director.password.get_secret_value()

    def running_jobs(self) -> tuple[RunningJob, ...]:
        return tuple(
            RunningJob(
                job_id=j.setup.job_id, job=j.name, status=j.status, files=j.files, bytes=j.bytes
            )
            for j in self.jobs.values()
        )

    async def serve_peer(self, conn: Connection, peer: Hello) -> None:
        if peer.role != "director":
            await conn.send(
                ErrorReply(code=Code.FD_ERROR, text=f"a {peer.role} cannot use this daemon")
            )
            return
        monitor = bool(getattr(self.config.directors[peer.name], "monitor", False))
        await serve_director(self, conn, monitor, self.log.bind(peer_name=peer.name), peer.name)
