"""Volumes for a backup: pick an appendable volume or label a new one; record JobMedia and volume updates."""

from __future__ import annotations

import asyncio
import functools
import re
import time
from typing import TYPE_CHECKING

from director.catalog import JobMediaRow
from director.jobs import status as st
from director.jobs.admission import WaitReason
from protocol.jobs import JobMediaReport, VolumeAssignment, VolumeUpdate

if TYPE_CHECKING:
    from director.config import PoolResource, StorageResource
    from director.jobs.control import JobControl
    from director.jobs.services import JobServices


def _padded(number: int, match: re.Match[str]) -> str:
    return str(number).zfill(int(match.group(1) or 0))


def next_volume_name(label_format: str, existing: set[str], count: int) -> str:
    """Bareos-style automatic label: `Full-` → `Full-0001`; `${NumVols}` style variables are expanded."""
    n = count + 1
    while True:
        if "$" in label_format:
            name = re.sub(
                r"\$\{?NumVols(?::p/(\d+)/0/r)?\}?", functools.partial(_padded, n), label_format
            )
            name = re.sub(r"\$\{?\w+\}?", "", name) or f"Vol-{n:04d}"
        else:
            name = f"{label_format}{n:04d}"
        if name not in existing:
            return name
        n += 1


MEDIA_RECHECK = (
    30.0  # a job waiting for media looks again this often, and whenever the media change
)


def _pool_lock(svc: JobServices, pool: str) -> asyncio.Lock:
    return svc.pool_locks.setdefault(pool, asyncio.Lock())


class NoVolume(Exception):
    """No volume can be appended to or created; the message says what the operator can do."""


async def assign_volume(
    svc: JobServices,
    jcr: JobControl,
    pool: PoolResource,
    storage: StorageResource,
    exclude: tuple[str | None, ...] = (),
) -> VolumeAssignment:
    """An Append volume of the pool with room for this job, or a newly labeled one. When there is
    neither, the job waits for media (status m, `waiting_for_volume`) as in Bareos, until an
    operator labels or frees a volume (`label`, `update volume`), it is canceled, or Max Wait Time."""
    before: str | None = None
    while True:
        try:
            # One job at a time per pool chooses or creates a volume: two jobs that both find no
            # appendable volume would otherwise create two, or the same name twice.
            async with _pool_lock(svc, pool.name):
                assignment = await _find_or_create(svc, jcr, pool, storage, exclude)
        except NoVolume as exc:
            if before is None:
                before = jcr.status
                svc.joblog(jcr, "warning", f"Job is waiting for media: {exc}")
                jcr.set_wait(WaitReason(st.WAIT_MEDIA, "waiting_for_volume", f"pool={pool.name}"))
            await svc.media_changed(MEDIA_RECHECK)
            continue
        if before is not None:
            svc.joblog(
                jcr, "info", f'Volume "{assignment.volume_name}" is available; the job continues'
            )
            jcr.set_status(before)
        return assignment


async def _find_or_create(
    svc: JobServices,
    jcr: JobControl,
    pool: PoolResource,
    storage: StorageResource,
    exclude: tuple[str | None, ...],
) -> VolumeAssignment:
    pool_id = jcr.pool_id
    if pool_id is None:
        raise NoVolume(f"pool {pool.name!r} is not in the catalog")
    media_type = storage.media_type or "File"
    media = await svc.db.list_media(pool_id)
    max_bytes = int(pool.maximum_volume_bytes or 0)
    max_jobs = int(pool.maximum_volume_jobs or 0)
    for m in media:
        if m.volume_name in exclude or m.status != "Append" or m.media_type != media_type:
            continue
        if (max_jobs and m.jobs >= max_jobs) or (max_bytes and m.bytes >= max_bytes):
            continue
        return VolumeAssignment(
            volume_name=m.volume_name,
            media_id=m.media_id,
            pool_name=pool.name,
            pool_type=pool.pool_type,
            media_type=media_type,
            max_bytes=max_bytes,
            max_jobs=max_jobs,
            # Never written: the job that created it may still be labeling it. Every job given it
            # then labels it if the file is not there yet; the Storage Daemon lets one label win.
            needs_label=m.bytes == 0 and m.jobs == 0,
        )
    if not pool.label_format:
        raise NoVolume(
            f"no appendable volume in pool {pool.name!r} (media type {media_type}) and the pool has no "
            f"Label Format; label one with: label storage={storage.name} pool={pool.name} volume=NAME"
        )
    if pool.maximum_volumes and len(media) >= pool.maximum_volumes:
        raise NoVolume(
            f"pool {pool.name!r} reached Maximum Volumes = {pool.maximum_volumes} and no volume can be "
            "appended to; free one with: update volume=NAME volstatus=Append (or Recycle/Purged)"
        )
    all_names = {m.volume_name for m in await svc.db.list_media(None)}
    name = next_volume_name(pool.label_format, all_names, len(media))
    media_id = await svc.db.create_media(
        name, pool_id, media_type, storage.name, max_vol_bytes=max_bytes, max_vol_jobs=max_jobs
    )
    svc.joblog(
        jcr,
        "info",
        f'Created new Volume "{name}" in catalog (pool {pool.name}); the Storage Daemon labels it',
    )
    return VolumeAssignment(
        volume_name=name,
        media_id=media_id,
        pool_name=pool.name,
        pool_type=pool.pool_type,
        media_type=media_type,
        max_bytes=max_bytes,
        max_jobs=max_jobs,
        needs_label=True,
    )


async def record_jobmedia(svc: JobServices, jcr: JobControl, msg: JobMediaReport) -> None:
    session_id, session_time = jcr.session or (0, 0)
    await svc.db.add_jobmedia(
        JobMediaRow(
            job_id=jcr.job_id,
            media_id=msg.media_id,
            volume_name=msg.volume_name,
            first_index=msg.first_index,
            last_index=msg.last_index,
            start_block=msg.start_block,
            end_block=msg.end_block,
            start_addr=msg.start_addr,
            end_addr=msg.end_addr,
            bytes=msg.bytes,
            session_id=session_id,
            session_time=session_time,
        )
    )
    if msg.volume_name not in jcr.volumes:
        jcr.volumes.append(msg.volume_name)


async def record_volume_update(svc: JobServices, jcr: JobControl, msg: VolumeUpdate) -> None:
    """Apply what one job wrote to a volume. Several jobs append to one volume at once and report
    in any order: the catalog adds their counts up in one statement (Catalog.add_volume_usage)."""
    before = await svc.db.get_media(msg.volume_name)
    if before is None:
        return
    status = msg.status if msg.status in ("Full", "Error") else None
    after = await svc.db.add_volume_usage(
        msg.volume_name,
        size=msg.bytes,
        blocks=msg.blocks,
        jobs=msg.jobs_written,
        files=msg.files_written,
        status=status,
        when=time.time(),
    )
    if after is not None and after.status != before.status:
        if after.status == "Used":
            svc.joblog(
                jcr, "info", f'Volume "{msg.volume_name}" reached Maximum Volume Jobs; marked Used'
            )
        elif after.status == "Full":
            svc.joblog(jcr, "info", f'Volume "{msg.volume_name}" is Full ({after.bytes:,} bytes)')
        elif after.status == "Error":
            svc.joblog(jcr, "error", f'Volume "{msg.volume_name}" marked Error: {msg.reason}')
    if msg.volume_name not in jcr.volumes and msg.jobs_written:
        jcr.volumes.append(msg.volume_name)
