"""GetLevelSinceTime: since-times from the catalog, upgrade to Full, the accurate list."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from director.catalog import Catalog
from director.restore.selection import backup_chain, latest_files
from protocol.attributes import FileType, decode_attributes

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
    if jcr.job_type == "B" and jcr.resource.accurate and jcr.level in ("I", "D"):
        jcr.backup.accurate_entries = await svc.db.run(
            functools.partial(_accurate_entries, jcr=jcr)
        )


def _accurate_entries(catalog: Catalog, jcr: JobControl) -> list[tuple[bytes, int, int, int, int]]:
    """The latest state of the backup chain, as (path, mtime_ns, ctime_ns, size, mode) (on the
    catalog thread: several reads in a row)."""
    jobs = catalog.list_jobs(client_id=jcr.client_id, fileset_id=jcr.fileset_id, job_name=jcr.name)
    chain = backup_chain(
        [j for j in jobs if j.job_id != jcr.job_id], jcr.client_id, jcr.fileset_id, None
    )
    if jcr.level == "D":
        chain = chain[:1]  # a Differential compares against its Full only
    files = latest_files([(job, catalog.list_files(job.job_id)) for job in chain])
    entries: list[tuple[bytes, int, int, int, int]] = []
    for path, row in files.items():
        attrs = decode_attributes(row.lstat)
        if attrs.type == FileType.DELETED:
            continue
        entries.append((path, attrs.mtime_ns, attrs.ctime_ns, attrs.size, attrs.mode))
    return entries
