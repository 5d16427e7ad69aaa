"""`label` a volume on a Storage Daemon, `estimate` what a backup would take, `status job=N`."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator

from director.console.acl import require_catalog, require_resolved
from director.console.format import display_path
from director.console.names import check_all
from director.console.paging import Lines, listing
from director.console.registry import Args, CommandError, Reply, Session, command
from director.fileset_spec import fileset_spec
from director.jobs.errors import JobError
from director.jobs.links import connect, request
from director.jobs.setup import RunRequest, resolve
from protocol.jobs import EstimateResult, FdEstimate, FdJobSetup, Ok, SdLabel


@command("label", usage="label storage=NAME pool=NAME volume=NAME")
async def label(session: Session, args: Args) -> Reply:
    """Label a new volume on a Storage Daemon's device and add it to a pool."""
    director = session.director
    config = director.config
    storage_name, pool_name, volume = args.get("storage"), args.get("pool"), args.get("volume")
    if not (storage_name and pool_name and volume):
        raise CommandError("usage: label storage=NAME pool=NAME volume=NAME")
    check_all(session, storage=storage_name, pool=pool_name)
    require_catalog(session)
    storage = config.storages[storage_name]
    pool = config.pools[pool_name]
    if await director.db.get_media(volume) is not None:
        raise CommandError(f'Media record for volume "{volume}" already exists')
    media_type = storage.media_type or "File"
    try:
        conn = await connect(director, "storage", storage)
        try:
            reply = await request(
                conn,
                SdLabel(
                    volume_name=volume,
                    pool_name=pool.name,
                    pool_type=pool.pool_type,
                    media_type=media_type,
                    device=storage.device[0] if storage.device else storage.name,
                ),
                Ok,
                "label",
            )
        finally:
            await conn.close(terminate=True)
    except JobError as exc:
        raise CommandError(str(exc)) from exc
    pool_id = await director.ensure_pool(pool.name)
    media_id = await director.db.create_media(
        volume,
        pool_id,
        media_type,
        storage.name,
        max_vol_bytes=int(pool.maximum_volume_bytes or 0),
        max_vol_jobs=int(pool.maximum_volume_jobs or 0),
    )
    director.engine.media_added()
    return Reply(
        text=f'{reply.text}\nCatalog record for Volume "{volume}", Slot 0 successfully created.',
        data={
            "label": {
                "volume": volume,
                "mediaid": media_id,
                "pool": pool.name,
                "storage": storage.name,
            }
        },
    )


@command("estimate", usage="estimate job=NAME [client=] [fileset=] [listing]")
async def estimate(session: Session, args: Args) -> Reply:
    """Ask the File Daemon how many files and bytes a Full backup of the job would take."""
    director = session.director
    name = args.get("job")
    if not name:
        raise CommandError("usage: estimate job=NAME [listing]")
    check_all(session, job=name, client=args.get("client"), fileset=args.get("fileset"))
    try:
        resolved = resolve(
            director.config,
            RunRequest(job=name, client=args.get("client"), fileset=args.get("fileset")),
        )
    except JobError as exc:
        raise CommandError(str(exc)) from exc
    require_resolved(session, resolved)  # the Job's defaults too, as `run` would use them
    if resolved.client is None or resolved.fileset is None:
        raise CommandError(f"job {name!r} has no Client or FileSet to estimate")
    spec = fileset_spec(director.config.filesets[resolved.fileset])
    try:
        conn = await connect(director, "client", director.config.clients[resolved.client])
        try:
            await request(
                conn,
                FdJobSetup(
                    job_id=0,
                    job=f"estimate.{time.time():.6f}",
                    job_type="B",
                    level="F",
                    fileset=spec,
                ),
                Ok,
                "estimate setup",
            )
            result = await request(
                conn,
                FdEstimate(listing=args.has("listing")),
                EstimateResult,
                "estimate",
                timeout=3600,
            )
        finally:
            await conn.close(terminate=True)
    except JobError as exc:
        raise CommandError(str(exc)) from exc
    listed = result.listing

    async def lines() -> AsyncGenerator[str, None]:
        for path in listed:
            yield display_path(path)

    return listing(
        "estimate.listing",
        lines(),
        Lines(str, empty=""),
        data={
            "estimate": {
                "job": name,
                "client": resolved.client,
                "files": result.files,
                "bytes": result.bytes,
            }
        },
        trailer=f"{result.files:,} OK estimate files={result.files} bytes={result.bytes:,}",
    )
