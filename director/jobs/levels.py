"""GetLevelSinceTime: since-times from the catalog, upgrade to Full, the accurate list in batches."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Final

from director.catalog import Catalog, FileRow
from director.jobs.plans import AccurateEntry
from director.restore.selection import backup_chain
from protocol.attributes import FileType, accurate_fields

ACCURATE_BATCH: Final = (
    2000  # entries per AccurateBatch message, and per step on the catalog thread
)

if TYPE_CHECKING:
    from director.jobs.control import JobControl
    from director.jobs.services import JobServices


async def resolve_level(svc: JobServices, jcr: JobControl) -> None:
    """Set since/since_ns for Incremental and Differential, or upgrade to Full when no Full exists."""
    client_id = jcr.client_id
    fileset_id = jcr.fileset_id
    if jcr.level in ("I", "D"):
        full = await svc.db.last_job(jcr.name, client_id, fileset_id, ["F"])
        if full is None:
            svc.joblog(jcr, "info", "No prior Full backup Job record found. Upgrading to Full.")
            jcr.backup.level_note = (
                " (upgraded from " + ("Incremental" if jcr.level == "I" else "Differential") + ")"
            )
            jcr.level = "F"
            resource = jcr.resource
            jcr.pool = resource.full_backup_pool or jcr.pool
        else:
            levels = ["F", "D", "I"] if jcr.level == "I" else ["F"]
            prior = await svc.db.last_job(jcr.name, client_id, fileset_id, levels)
            assert prior is not None
            jcr.since = prior.start_time
            jcr.since_ns = int((prior.start_time or 0) * 1_000_000_000)
            svc.joblog(
                jcr,
                "info",
                f"Since time from JobId {prior.job_id} ({prior.level}): {prior.start_time}",
            )


def accurate_chain(catalog: Catalog, jcr: JobControl) -> list[int]:
    """The JobIds the accurate list is read from, oldest first (on the catalog thread): the
    chain before this job; a Differential compares against its Full only."""
    jobs = catalog.list_jobs(client_id=jcr.client_id, fileset_id=jcr.fileset_id, job_name=jcr.name)
    chain = backup_chain(
        [j for j in jobs if j.job_id != jcr.job_id], jcr.client_id, jcr.fileset_id, None
    )
    if jcr.level == "D":
        chain = chain[:1]
    return [job.job_id for job in chain]


def accurate_entries(rows: Iterable[FileRow]) -> list[AccurateEntry]:
    """(path, mtime_ns, ctime_ns, size, mode) of live rows, as the File Daemon compares them."""
    entries: list[AccurateEntry] = []
    for row in rows:
        kind, mtime_ns, ctime_ns, size, mode = accurate_fields(row.lstat)
        if kind == FileType.DELETED:
            continue
        entries.append((row.full_path, mtime_ns, ctime_ns, size, mode))
    return entries


async def accurate_batches(
    svc: JobServices, jcr: JobControl, batch: int = ACCURATE_BATCH
) -> AsyncIterator[list[AccurateEntry]]:
    """The latest state of the backup chain in batches, read from the catalog as they are sent:
    the Director never holds the whole list (issue #14)."""
    chain = await svc.db.run(functools.partial(accurate_chain, jcr=jcr))
    if not chain:
        return

    def walk(catalog: Catalog) -> Iterator[list[AccurateEntry]]:
        return (accurate_entries(rows) for rows in catalog.walk_chain(chain, batch=batch))

    async for entries in svc.db.batches(walk):
        if entries:
            yield entries
