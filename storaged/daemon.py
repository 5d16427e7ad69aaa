"""The Storage Daemon process: serves its Directors, and the data sessions of the jobs they set up."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from common.config.loader import Loaded
from common.daemon import Daemon, OwnResource
from common.logging import Log
from common.net import Connection
from protocol.messages import Code, DaemonStatus, ErrorReply, Hello, RunningJob
from storaged.config import StorageDaemonConfig
from storaged.control import guarded, serve_director
from storaged.jobs import JobRegistry
from storaged.reservation import Device
from storaged.sessions import run_append, run_read

SD_PORT: Final = 9103


class StorageDaemon(Daemon[StorageDaemonConfig]):
    role = "storage"
    ok_code = Code.SD_OK
    default_port = SD_PORT
    accepts_bulk_data = True  # a reading SD streams a remote copy's records here

    def __init__(self, config_path: Path, loaded: Loaded[StorageDaemonConfig], log: Log) -> None:
        super().__init__(config_path, loaded, log)
        self.registry = JobRegistry(
            devices={
                name: Device(
                    name=name,
                    media_type=d.media_type,
                    archive=Path(d.archive_device),
                    label_media=d.label_media,
                    max_jobs=max(1, d.maximum_concurrent_jobs),
                    direct_io=d.direct_io,
                )
                for name, d in self.config.devices.items()
            }
        )

    @property
    def own(self) -> OwnResource:
        return self.config.storage

    @property
    def client_connect_wait(self) -> float:
        return float(self.config.storage.client_connect_wait)

    def lookup_secret(self, hello: Hello) -> str | None:
        if hello.role == "job":
            return self.registry.key_for(hello.name)
        if hello.role != "director":
            return None
        director = self.config.directors.get(hello.name)
        return None if director is None else director.password.get_secret_value()

    def status(self) -> DaemonStatus:
        return super().status().model_copy(update={"devices": self.registry.device_status()})

    def running_jobs(self) -> tuple[RunningJob, ...]:
        return tuple(
            RunningJob(
                job_id=j.setup.job_id, job=j.name, status=j.status, files=j.files, bytes=j.bytes
            )
            for j in self.registry.jobs.values()
        )

    async def serve_peer(self, conn: Connection, peer: Hello) -> None:
        log = self.log.bind(peer_name=peer.name)
        if peer.role == "director":
            director = self.config.directors[peer.name]
            await serve_director(self, conn, bool(director.monitor), log)
            return
        job = self.registry.jobs.get(peer.name)
        if job is None or job.data_attached.is_set():
            await conn.send(
                ErrorReply(
                    code=Code.SD_ERROR, text=f"no job {peer.name} is waiting for a data session"
                )
            )
            return
        job.used_key = True  # the key is one-time: nobody else gets in with it
        job.data_attached.set()
        log.info(
            "data_session_attached", job=job.name, mode="append" if job.setup.append else "read"
        )
        with self.busy(conn):
            work = run_append(job, conn, log) if job.setup.append else run_read(job, conn, log)
            await guarded(
                job, work, log, peer="Storage Daemon" if job.setup.listen else "File Daemon"
            )
