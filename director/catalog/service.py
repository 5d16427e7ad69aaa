"""The Director's one way to the catalog: typed async methods, one catalog thread.

Every catalog method runs on the one catalog thread, so the event loop never waits on SQL and
statements of one connection never interleave. Each method here takes its signature from the
backend's (`Catalog`, SQLite today), so the two cannot drift, and calls it by name on whatever
backend the service was opened with: the seam a PostgreSQL backend plugs into. A composite read
that needs several statements in a row runs as one function on the thread (`run`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from typing import Concatenate, ParamSpec, TypeVar

from director.catalog.sqlite import Catalog

P = ParamSpec("P")
T = TypeVar("T")


def _on_thread(
    method: Callable[Concatenate[Catalog, P], T],
) -> Callable[Concatenate[CatalogService, P], Awaitable[T]]:
    """An async method with `method`'s signature that runs it on the catalog thread."""
    name = method.__name__

    async def call(self: CatalogService, /, *args: P.args, **kwargs: P.kwargs) -> T:
        backend = self.backend
        bound: Callable[P, T] = getattr(backend, name)
        return await self.run_blocking(functools.partial(bound, *args, **kwargs))

    call.__name__ = call.__qualname__ = name
    call.__doc__ = method.__doc__
    return call


def _next(items: Iterator[T]) -> list[T]:
    """The next item of `items` in a list, or an empty list at its end."""
    for item in items:
        return [item]
    return []


class CatalogService:
    """Async, typed access to the catalog through one thread (see the module docstring)."""

    def __init__(self, opener: Callable[[], Catalog]) -> None:
        self._opener = opener
        self._backend: Catalog | None = None
        self._thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="catalog"
        )

    @property
    def backend(self) -> Catalog:
        """The opened backend (opened on first use; CatalogError when it cannot be)."""
        if self._backend is None:
            self._backend = self._opener()
        return self._backend

    async def open(self) -> None:
        """Open (and migrate) the catalog on its thread."""
        await self.run_blocking(lambda: self.backend)

    async def run_blocking(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    async def run(self, fn: Callable[[Catalog], T]) -> T:
        """Run a function of several catalog reads, as one step on the catalog thread."""
        return await self.run_blocking(lambda: fn(self.backend))

    async def batches(self, open_: Callable[[Catalog], Iterator[T]]) -> AsyncIterator[T]:
        """Iterate a catalog generator (`Catalog.walk_chain`, say) one item per step on the
        catalog thread: other calls run between the steps, and the event loop never reads SQL."""
        items = await self.run(open_)
        try:
            while True:
                got = await self.run_blocking(functools.partial(_next, items))
                if not got:
                    return
                yield got[0]
        finally:
            if isinstance(items, Generator):  # stopped early: its finally blocks run there too
                await self.run_blocking(items.close)

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
        self._thread.shutdown(wait=False)

    # -- resources --------------------------------------------------------------------------
    ensure_client = _on_thread(Catalog.ensure_client)
    ensure_fileset = _on_thread(Catalog.ensure_fileset)
    ensure_storage = _on_thread(Catalog.ensure_storage)
    ensure_pool = _on_thread(Catalog.ensure_pool)
    list_pools = _on_thread(Catalog.list_pools)
    client_id = _on_thread(Catalog.client_id)
    fileset_ids = _on_thread(Catalog.fileset_ids)

    # -- jobs -------------------------------------------------------------------------------
    create_job = _on_thread(Catalog.create_job)
    update_job = _on_thread(Catalog.update_job)
    apply_job_changes = _on_thread(Catalog.apply_job_changes)
    get_job = _on_thread(Catalog.get_job)
    list_jobs = _on_thread(Catalog.list_jobs)
    last_job = _on_thread(Catalog.last_job)
    copies_of = _on_thread(Catalog.copies_of)
    run_select = _on_thread(Catalog.run_select)
    delete_job = _on_thread(Catalog.delete_job)
    unfinished_jobs = _on_thread(Catalog.unfinished_jobs)
    add_log = _on_thread(Catalog.add_log)
    job_log = _on_thread(Catalog.job_log)

    # -- files ------------------------------------------------------------------------------
    insert_files = _on_thread(Catalog.insert_files)
    list_files = _on_thread(Catalog.list_files)
    copy_deleted_files = _on_thread(Catalog.copy_deleted_files)
    browse_directory = _on_thread(Catalog.browse_directory)
    existing_indexes = _on_thread(Catalog.existing_indexes)

    # -- media ------------------------------------------------------------------------------
    create_media = _on_thread(Catalog.create_media)
    get_media = _on_thread(Catalog.get_media)
    list_media = _on_thread(Catalog.list_media)
    update_media = _on_thread(Catalog.update_media)
    add_volume_usage = _on_thread(Catalog.add_volume_usage)
    add_jobmedia = _on_thread(Catalog.add_jobmedia)
    list_jobmedia = _on_thread(Catalog.list_jobmedia)

    # -- scheduler --------------------------------------------------------------------------
    scheduler_state = _on_thread(Catalog.scheduler_state)
    save_scheduler_state = _on_thread(Catalog.save_scheduler_state)

    # -- console reads in pages -------------------------------------------------------------
    files_page = _on_thread(Catalog.files_page)
    jobs_page = _on_thread(Catalog.jobs_page)
    media_page = _on_thread(Catalog.media_page)
    log_page = _on_thread(Catalog.log_page)
    known_names = _on_thread(Catalog.known_names)
