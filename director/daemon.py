"""The Director process: console server, catalog, job queue, status relay, configuration reload."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

from common.config import ConfigError
from common.daemon import Daemon, OwnResource, StartupError
from common.net import Connection
from director.catalog import Catalog, CatalogError, NewJob, PoolRow, open_catalog
from director.config import load_director_config
from director.console.server import DEFAULT_CONSOLE, serve_console
from director.joblog import LogLine, MessageQueue
from director.jobs import status as st
from director.jobs.admission import Limits as JobLimits
from director.jobs.admission import WaitReason
from director.jobs.control import JobControl
from director.jobs.naming import UniqueNamer
from director.jobs.queue import JobQueue
from director.jobs.runner import run_job
from director.jobs.setup import RunRequest, setup_job
from protocol.jobs import CancelJob
from protocol.messages import Code, ErrorReply, Hello, RunningJob

DIR_PORT: Final = 9101
T = TypeVar("T")


class DirectorDaemon(Daemon):
    role = "director"
    ok_code = Code.DIR_OK
    default_port = DIR_PORT

    def __init__(self, config_path: Path, loaded: Any, log: Any) -> None:
        super().__init__(config_path, loaded, log)
        self.namer = UniqueNamer()
        self.messages = MessageQueue()
        self._db_thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="catalog")
        self._catalog: Catalog | None = None
        self.queue = JobQueue(self._limits, self._run_job, log)
        self._timers: set[asyncio.Task[None]] = set()

    # -- identity ---------------------------------------------------------------------------

    @property
    def own(self) -> OwnResource:
        return self.config.director  # type: ignore[no-any-return]

    def lookup_secret(self, hello: Hello) -> str | None:
        if hello.role != "console":
            return None
        if hello.name == DEFAULT_CONSOLE:
            return self.config.director.password.get_secret_value()  # type: ignore[no-any-return]
        console = self.config.consoles.get(hello.name)
        return None if console is None else console.password.get_secret_value()

    async def serve_peer(self, conn: Connection, peer: Hello) -> None:
        if peer.role == "console":
            await serve_console(self, conn, peer, self.log.bind(console=peer.name))
            return
        await conn.send(ErrorReply(code=Code.COMMAND_FAILED, text=f"a {peer.role} cannot call the Director"))

    # -- catalog ----------------------------------------------------------------------------

    @property
    def working_dir(self) -> Path:
        return Path(self.config.director.working_directory or ".")

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            catalogs = list(self.config.catalogs.values())
            if not catalogs:
                raise StartupError("no Catalog resource is configured", 42)
            try:
                self._catalog = open_catalog(catalogs[0], self.working_dir)
            except CatalogError as exc:
                raise StartupError(str(exc)) from exc
        return self._catalog

    async def catalog_call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Run one catalog method on the catalog thread (the event loop never waits on SQL)."""
        fn = getattr(self.catalog, method)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_thread, functools.partial(fn, *args, **kwargs))

    async def run_in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db_thread, functools.partial(fn, *args))

    async def ensure_pool(self, name: str | None) -> int | None:
        if name is None:
            return None
        pool = self.config.pools[name]
        row = PoolRow(name=pool.name, pool_type=pool.pool_type, label_format=pool.label_format,
                      max_vol_bytes=int(pool.maximum_volume_bytes or 0), max_vol_jobs=int(pool.maximum_volume_jobs or 0),
                      max_vols=int(pool.maximum_volumes or 0), vol_retention=float(pool.volume_retention),
                      recycle=pool.recycle, auto_prune=pool.auto_prune)
        return int(await self.catalog_call("ensure_pool", row))

    @staticmethod
    def new_job_row(*, unique: str, name: str, job_type: str, level: str, client_id: int | None,
                    fileset_id: int | None, pool_id: int | None, sched_time: float, priority: int) -> NewJob:
        return NewJob(job=unique, name=name, type=job_type, level=level, client_id=client_id, fileset_id=fileset_id,
                      pool_id=pool_id, sched_time=sched_time, priority=priority)

    # -- jobs -------------------------------------------------------------------------------

    def joblog(self, jcr: JobControl, level: str, text: str) -> None:
        """A job message: for `messages`, the catalog Log table, and the daemon log."""
        now = time.time()
        self.messages.add(LogLine(now, jcr.job_id, jcr.unique, level, text))
        self.log.info("job_message", job_id=jcr.job_id, job=jcr.unique, level=level, text=text)
        line = LogLine(now, jcr.job_id, jcr.unique, level, text).render(self.name)
        self._db_thread.submit(self.catalog.add_log, jcr.job_id, now, line)

    def _limits(self) -> JobLimits:
        config = self.config
        return JobLimits(
            director=config.director.maximum_concurrent_jobs,
            jobs={n: j.maximum_concurrent_jobs for n, j in config.jobs.items()},
            clients={n: c.maximum_concurrent_jobs for n, c in config.clients.items()},
            storages={n: s.maximum_concurrent_jobs for n, s in config.storages.items()},
        )

    async def submit(self, req: RunRequest) -> JobControl:
        """RunJob → SetupJob → JobqAdd."""
        jcr = await setup_job(self, req)
        delay = jcr.sched_time - time.time()
        if delay > 0:
            # JobqAdd: a job scheduled in the future waits in a timer task, visible and cancelable.
            jcr.status = st.WAIT_START_TIME
            jcr.wait = WaitReason(st.WAIT_START_TIME, "start_time", time.strftime("%Y-%m-%d %H:%M:%S",
                                                                                  time.localtime(jcr.sched_time)))
            self.queue.jobs[jcr.job_id] = jcr
            task = asyncio.create_task(self._start_later(jcr, delay))
            self._timers.add(task)
            task.add_done_callback(self._timers.discard)
            self.joblog(jcr, "info", f"Job scheduled to start at {jcr.wait.resource}")
        else:
            self.queue.add(jcr)
        return jcr

    async def _start_later(self, jcr: JobControl, delay: float) -> None:
        canceled = asyncio.ensure_future(jcr.canceled.wait())
        try:
            await asyncio.wait({canceled}, timeout=delay)
        finally:
            canceled.cancel()
        if jcr.canceled.is_set():
            return
        jcr.status, jcr.wait = st.CREATED, None
        self.queue.add(jcr)

    async def _run_job(self, jcr: JobControl) -> None:
        await run_job(self, jcr)

    async def cancel(self, jcr: JobControl) -> str:
        if jcr.status in st.FINAL:
            return f"JobId {jcr.job_id} already ended with status {jcr.status}"
        jcr.canceled.set()
        if self.queue.cancel_waiting(jcr) or jcr.status == st.WAIT_START_TIME:
            jcr.status, jcr.wait = st.CANCELED, None
            now = time.time()
            await self.catalog_call("update_job", jcr.job_id, JobStatus=st.CANCELED, EndTime=now, RealEndTime=now,
                                    Comment="canceled while waiting")
            self.joblog(jcr, "info", "Job canceled while waiting in the queue")
            jcr.done.set()
            self.queue.jobs.pop(jcr.job_id, None)
        else:
            self.joblog(jcr, "info", "Cancel requested by the console")
        return f"JobId {jcr.job_id}, Job {jcr.unique} marked to be canceled."

    def running_jobs(self) -> tuple[RunningJob, ...]:
        out = []
        for jcr in [*self.queue.running, *self.queue.waiting]:
            summary = jcr.summary()
            out.append(RunningJob(job_id=jcr.job_id, job=jcr.unique, status=jcr.status,
                                  files=int(summary["jobfiles"] or 0), bytes=int(summary["jobbytes"] or 0)))
        return tuple(out)

    async def cancel_on_daemons(self, jcr: JobControl, conns: list[Connection]) -> None:
        for conn in conns:
            await conn.send(CancelJob(job=jcr.unique))

    # -- lifecycle --------------------------------------------------------------------------

    async def on_started(self, tg: asyncio.TaskGroup) -> None:
        await self.run_in_thread(lambda: self.catalog)
        await self._recover()
        tg.create_task(self.queue.serve(self.stop_event))

    async def _recover(self) -> None:
        """Jobs the catalog says were running or queued when the Director last stopped end as incomplete."""
        stale = [j for j in await self.catalog_call("list_jobs") if j.status not in st.FINAL]
        now = time.time()
        for job in stale:
            await self.catalog_call("update_job", job.job_id, JobStatus=st.ERROR, EndTime=now, RealEndTime=now,
                                    Comment="the Director stopped while this job was queued or running")
        if stale:
            self.log.warning("stale_jobs_marked", count=len(stale), job_ids=[j.job_id for j in stale])

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
        self.log.info("config_reloaded", files=len(loaded.files))
        return True, f"configuration reloaded from {self.config_path}"

    def reload(self) -> None:
        self.reload_config()
