"""The Director process: console server, catalog, job queue, status relay, configuration reload."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Final, TypeVar, overload

from common.config import ConfigError, Loaded
from common.daemon import EXIT_CONFIG, Daemon, OwnResource, StartupError
from common.logging import Log
from common.net import Connection
from director.catalog import Catalog, CatalogError, PoolRow, open_catalog
from director.catalog.service import CatalogService
from director.config import DirectorConfig, load_director_config
from director.console.server import DEFAULT_CONSOLE, serve_console
from director.events import EventBus
from director.joblog import MessageQueue
from director.jobs.admission import Limits as JobLimits
from director.jobs.control import JobControl
from director.jobs.engine import JobEngine
from director.jobs.errors import JobError
from director.jobs.hooks import HookRunner
from director.jobs.naming import UniqueNamer
from director.jobs.setup import RunRequest
from director.messages.router import MessageRouter
from director.schedule.scheduler import Scheduler
from protocol.messages import Code, ErrorReply, Hello, RunningJob

DIR_PORT: Final = 9101
T = TypeVar("T")


class DirectorDaemon(Daemon[DirectorConfig]):
    role = "director"
    ok_code = Code.DIR_OK
    default_port = DIR_PORT

    def __init__(self, config_path: Path, loaded: Loaded[DirectorConfig], log: Log) -> None:
        super().__init__(config_path, loaded, log)
        self.namer = UniqueNamer()
        self.messages = MessageQueue()
        self.events = EventBus()
        self.db = CatalogService(self._open_catalog)
        self.engine = JobEngine(self)
        self.router = MessageRouter(
            director_name=lambda: self.name,
            config=lambda: self.config,
            console=self.messages.add,
            catalog=self.engine.writer.add_log,
            log=log,
        )
        self.status_hooks = HookRunner(self)
        self.queue = self.engine.queue
        self.scheduler = Scheduler(
            lambda: self.config,
            self.submit,
            self.db.scheduler_state,
            self.db.save_scheduler_state,
            log,
        )

    # -- identity ---------------------------------------------------------------------------

    @property
    def own(self) -> OwnResource:
        return self.config.director

    def lookup_secret(self, hello: Hello) -> str | None:
        if hello.role != "console":
            return None
        if hello.name == DEFAULT_CONSOLE:
            return self.config.director.password.get_secret_value()
        console = self.config.consoles.get(hello.name)
        return None if console is None else console.password.get_secret_value()

    async def serve_peer(self, conn: Connection, peer: Hello) -> None:
        if peer.role == "console":
            await serve_console(self, conn, peer, self.log.bind(console=peer.name))
            return
        await conn.send(
            ErrorReply(code=Code.COMMAND_FAILED, text=f"a {peer.role} cannot call the Director")
        )

    # -- catalog ----------------------------------------------------------------------------

    @property
    def working_dir(self) -> Path:
        return Path(self.config.director.working_directory or ".")

    def _open_catalog(self) -> Catalog:
        catalogs = list(self.config.catalogs.values())
        if not catalogs:
            raise StartupError("no Catalog resource is configured", 42)
        try:
            return open_catalog(catalogs[0], self.working_dir)
        except (CatalogError, OSError) as exc:  # before READY=1, as a configuration error (#13)
            raise StartupError(f"cannot open the catalog: {exc}", EXIT_CONFIG) from exc

    @property
    def catalog(self) -> Catalog:
        """The catalog backend itself, for code already on the catalog thread (use `db`)."""
        return self.db.backend

    @overload
    async def ensure_pool(self, name: str) -> int: ...

    @overload
    async def ensure_pool(self, name: None) -> None: ...

    async def ensure_pool(self, name: str | None) -> int | None:
        if name is None:
            return None
        pool = self.config.pools[name]
        row = PoolRow(
            name=pool.name,
            pool_type=pool.pool_type,
            label_format=pool.label_format,
            max_vol_bytes=int(pool.maximum_volume_bytes or 0),
            max_vol_jobs=int(pool.maximum_volume_jobs or 0),
            max_vols=int(pool.maximum_volumes or 0),
            vol_retention=float(pool.volume_retention),
            recycle=pool.recycle,
            auto_prune=pool.auto_prune,
        )
        return await self.db.ensure_pool(row)

    # -- jobs -------------------------------------------------------------------------------

    def joblog(self, jcr: JobControl, level: str, text: str) -> None:
        """A job message: to the daemon log, and where the job's Messages resource routes it."""
        self.log.info("job_message", job_id=jcr.job_id, job=jcr.unique, level=level, text=text)
        self.router.job_message(jcr, level, text)

    def director_message(self, level: str, text: str) -> None:
        """A message of the Director itself, not of a job: the daemon log and its Messages resource."""
        self.log.info("director_message", level=level, text=text)
        self.router.director_message(level, text)

    def job_limits(self) -> JobLimits:
        config = self.config
        return JobLimits(
            director=config.director.maximum_concurrent_jobs,
            jobs={n: j.maximum_concurrent_jobs for n, j in config.jobs.items()},
            clients={n: c.maximum_concurrent_jobs for n, c in config.clients.items()},
            storages={n: s.maximum_concurrent_jobs for n, s in config.storages.items()},
        )

    async def submit(self, req: RunRequest) -> JobControl:
        """RunJob → SetupJob → JobqAdd. A new job (console, scheduler, restore) is refused while the
        catalog does not take the job state; the actions of a job already accepted are not, nor are
        queued jobs, retries and recovery (they do not come through here)."""
        refusal = self.engine.refusal()
        if refusal is not None and req.parent_job_id is None:
            if req.params.get("scheduled"):
                self.director_message(
                    "error",
                    f"Job {req.job} (schedule {req.params['scheduled']}) not run: {refusal}",
                )
            raise JobError(refusal)
        return await self.engine.submit(req)

    async def cancel(self, jcr: JobControl, reason: str = "canceled by the console") -> str:
        return self.engine.cancel_job(jcr, reason)

    def running_jobs(self) -> tuple[RunningJob, ...]:
        out = []
        for jcr in [*self.queue.running, *self.queue.waiting]:
            summary = jcr.summary()
            out.append(
                RunningJob(
                    job_id=jcr.job_id,
                    job=jcr.unique,
                    status=jcr.status,
                    files=int(summary["jobfiles"] or 0),
                    bytes=int(summary["jobbytes"] or 0),
                )
            )
        return tuple(out)

    # -- lifecycle --------------------------------------------------------------------------

    async def before_ready(self) -> None:
        await self.db.open()  # an unopenable catalog ends the start with exit 42, before READY=1

    async def on_started(self, tg: asyncio.TaskGroup) -> None:
        await self.engine.recover()  # the queue as it was, before admission and catch-up runs
        tg.create_task(self.engine.serve(self.stop_event))
        tg.create_task(self.engine.watch(self.stop_event))
        tg.create_task(self.scheduler.serve(self.stop_event))
        tg.create_task(self.router.serve(self.stop_event))
        tg.create_task(self._close_hooks_on_stop())

    async def _close_hooks_on_stop(self) -> None:
        await self.stop_event.wait()
        await self.status_hooks.aclose()

    def reload_config(self) -> tuple[bool, str]:
        """Build a new configuration and swap it whole, or keep the old one and say why."""
        try:
            loaded = load_director_config(self.config_path)
        except (ConfigError, OSError) as exc:
            self.log.error("reload_rejected", reason=str(exc))
            return False, f"reload failed, keeping the running configuration: {exc}"
        for warning in loaded.warnings:
            self.log.warning("config_warning", warning=str(warning))
        self.loaded = loaded
        self.queue.kick()
        self.scheduler.kick()
        self.log.info("config_reloaded", files=len(loaded.files))
        return True, f"configuration reloaded from {self.config_path}"

    def reload(self) -> None:
        self.reload_config()
