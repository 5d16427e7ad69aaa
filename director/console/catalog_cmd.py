"""Catalog views: list / llist (jobs, jobid=, volumes, pools, files, joblog), delete, update volume.

Listings that grow with the catalog are read a page at a time and streamed (director/console/paging.py)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NotRequired, TypedDict

from director.catalog import FileRow, JobRow, MediaRow
from director.console.acl import (
    job_visible,
    permitted,
    require_catalog,
    require_job,
    visible_pages,
    volume_visible,
)
from director.console.format import display_path
from director.console.names import check
from director.console.paging import (
    NO_RESULTS,
    Lines,
    Long,
    Row,
    Table,
    Window,
    listing,
    paged,
)
from director.console.registry import Args, CommandError, Reply, Session, command
from director.jobs import status as st
from protocol.attributes import decode_attributes


def _when(epoch: float | None) -> str:
    return "" if not epoch else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


class JobView(TypedDict):
    """A catalog job as `list`/`llist` and `status job=` show it (bconsole's column names)."""

    jobid: int
    job: str
    name: str
    type: str
    level: str
    jobstatus: str
    status: str
    client: str | None
    fileset: str | None
    pool: str | None
    schedtime: str
    starttime: str
    endtime: str
    jobfiles: int
    jobbytes: int
    readbytes: int
    joberrors: int
    volsessionid: int
    volsessiontime: int
    priorjobid: int | None
    comment: str | None
    wait_reason: str | None
    retry: int
    parentjobid: int | None


class VolumeView(TypedDict):
    """A catalog volume as `list volumes` shows it."""

    mediaid: int
    volumename: str
    pool: str
    volstatus: str
    mediatype: str
    volbytes: int
    volblocks: int
    voljobs: int
    volfiles: int
    lastwritten: str
    storage: str | None


class FileView(TypedDict):
    """A file of a job as `list files` shows it; `llist files` adds its attributes."""

    fileindex: int
    path: str
    type: NotRequired[str]
    mode: NotRequired[str]
    uid: NotRequired[int]
    gid: NotRequired[int]
    size: NotRequired[int]
    mtime: NotRequired[str]
    digest: NotRequired[str | None]
    deleted: NotRequired[bool]


class LogView(TypedDict):
    time: str
    logtext: str


def job_dict(job: JobRow) -> JobView:
    return {
        "jobid": job.job_id,
        "job": job.job,
        "name": job.name,
        "type": job.type,
        "level": job.level,
        "jobstatus": job.status,
        "status": st.describe(job.status),
        "client": job.client,
        "fileset": job.fileset,
        "pool": job.pool,
        "schedtime": _when(job.sched_time),
        "starttime": _when(job.start_time),
        "endtime": _when(job.end_time),
        "jobfiles": job.files,
        "jobbytes": job.bytes,
        "readbytes": job.read_bytes,
        "joberrors": job.errors,
        "volsessionid": job.session_id,
        "volsessiontime": job.session_time,
        "priorjobid": job.prior_job_id,
        "comment": job.comment,
        "wait_reason": job.wait_reason if job.status not in st.FINAL else None,
        "retry": job.retry,
        "parentjobid": job.parent_job_id,
    }


def _live(session: Session, row: JobView) -> JobView:
    """A job the Director holds in memory shows its live status and wait reason."""
    jcr = session.director.queue.jobs.get(row["jobid"])
    if jcr is not None and row["jobstatus"] not in st.FINAL:
        row["jobstatus"], row["status"] = jcr.status, st.describe(jcr.status)
        row["wait_reason"] = jcr.wait.describe() if jcr.wait is not None else None
    return row


JOB_COLUMNS = [
    "jobid",
    "name",
    "client",
    "starttime",
    "type",
    "level",
    "jobfiles",
    "jobbytes",
    "jobstatus",
]
VOLUME_COLUMNS = [
    "mediaid",
    "volumename",
    "volstatus",
    "pool",
    "volbytes",
    "voljobs",
    "mediatype",
    "lastwritten",
]


def _table(rows: Sequence[Row], columns: list[str]) -> str:
    """A whole (short) table at once."""
    if not rows:
        return NO_RESULTS
    table = Table(columns)
    table.fit(rows)
    return "\n".join(
        [
            *table.header(),
            *(line for r in rows for line in table.lines(r)),
            *table.footer(len(rows)),
        ]
    )


def _long(rows: Sequence[Row]) -> str:
    if not rows:
        return NO_RESULTS
    layout = Long()
    return "\n".join(line for r in rows for line in layout.lines(r))


async def _catalog_names(session: Session, kind: str) -> list[str]:
    names: list[str] = await session.director.db.known_names(kind)
    return names


async def _list(session: Session, args: Args, long: bool) -> Reply:
    director = session.director
    require_catalog(session)
    what = args.words[0].lower() if args.words else ""
    window = Window.parse(args)
    if "jobid" in args.options and what not in ("files", "joblog"):
        raw = args.get("jobid") or ""
        if not raw.isdigit():
            raise CommandError("usage: list jobid=N")
        job = await director.db.get_job(int(raw))
        if job is not None and not job_visible(session, job):
            job = None  # a job the console may not see is not there
        rows = [_live(session, job_dict(job))] if job is not None else []
        return Reply(
            text=_long(rows)
            if long
            else _table(
                rows,
                [
                    "jobid",
                    "name",
                    "starttime",
                    "type",
                    "level",
                    "jobfiles",
                    "jobbytes",
                    "jobstatus",
                ],
            ),
            data={"jobs": rows},
        )
    if what in ("jobs", ""):
        job_name = check(session, "job", args.get("job"), also=await _catalog_names(session, "job"))
        client = check(
            session, "client", args.get("client"), also=await _catalog_names(session, "client")
        )
        descending = (args.get("order") or "asc").lower() == "desc"

        async def fetch(after: int | None, size: int, offset: int) -> list[JobRow]:
            rows: list[JobRow] = await director.db.jobs_page(
                after,
                size,
                offset=offset,
                descending=descending,
                job_name=job_name,
                client=client,
                status=args.get("jobstatus"),
            )
            return rows

        jobs = (
            _live(session, job_dict(j))
            async for j in visible_pages(
                session,
                fetch,
                lambda j: j.job_id,
                window,
                None,
                keep=lambda j: job_visible(session, j),
            )
        )
        return listing(
            "jobs", jobs, Long() if long else Table(list(JOB_COLUMNS), optional=("wait_reason",))
        )
    if what in ("volumes", "media"):
        pool = check(session, "pool", args.get("pool"), also=await _catalog_names(session, "pool"))

        async def fetch_media(after: int, size: int, offset: int) -> list[MediaRow]:
            rows: list[MediaRow] = await director.db.media_page(
                after, size, offset=offset, pool=pool
            )
            return rows

        volumes = (
            _volume(m)
            async for m in visible_pages(
                session,
                fetch_media,
                lambda m: m.media_id,
                window,
                0,
                keep=lambda m: volume_visible(session, m),
            )
        )
        return listing("volumes", volumes, Long() if long else Table(list(VOLUME_COLUMNS)))
    if what == "pools":
        pools = [r for r in await director.db.list_pools() if permitted(session, "pool", r["name"])]
        return Reply(
            text=_long(pools) if long else _table(pools, list(pools[0]) if pools else []),
            data={"pools": pools},
        )
    if what == "files":
        job_id = await _visible_jobid(session, args, "list files jobid=N")

        async def fetch_files(after: int, size: int, offset: int) -> list[tuple[int, FileRow]]:
            rows: list[tuple[int, FileRow]] = await director.db.files_page(
                job_id, after, size, offset
            )
            return rows

        files = (
            _file(row, long) async for _, row in paged(fetch_files, lambda item: item[0], window, 0)
        )
        layout = (
            Long()
            if long
            else Lines(
                lambda r: ("(deleted) " if r["fileindex"] == 0 else "") + r["path"],
                empty="No files.",
            )
        )
        return listing("files", files, layout)
    if what == "joblog":
        job_id = await _visible_jobid(session, args, "list joblog jobid=N")

        async def fetch_log(after: int, size: int, offset: int) -> list[tuple[int, float, str]]:
            rows: list[tuple[int, float, str]] = await director.db.log_page(
                job_id, after, size, offset
            )
            return rows

        log = (
            {"time": _when(when), "logtext": text}
            async for _, when, text in paged(fetch_log, lambda item: item[0], window, 0)
        )
        return listing(
            "joblog",
            log,
            Long()
            if long
            else Lines(
                lambda r: str(r["logtext"]).rstrip("\n"), empty=f"No job log for JobId {job_id}."
            ),
        )
    raise CommandError(
        f"list {what}: use jobs, jobid=N, volumes, pools, files jobid=N or joblog jobid=N"
    )


def _jobid(args: Args, usage: str) -> int:
    raw = args.get("jobid") or ""
    if not raw.isdigit():
        raise CommandError(f"usage: {usage}")
    return int(raw)


async def _visible_jobid(session: Session, args: Args, usage: str) -> int:
    """`jobid=N` of a job the console may see (an unknown one lists nothing, as before)."""
    job_id = _jobid(args, usage)
    row = await session.director.db.get_job(job_id)
    if row is not None:
        require_job(session, row)
    return job_id


def _volume(m: MediaRow) -> VolumeView:
    return {
        "mediaid": m.media_id,
        "volumename": m.volume_name,
        "pool": m.pool,
        "volstatus": m.status,
        "mediatype": m.media_type,
        "volbytes": m.bytes,
        "volblocks": m.blocks,
        "voljobs": m.jobs,
        "volfiles": m.files,
        "lastwritten": _when(m.last_written),
        "storage": m.storage,
    }


def _file(f: FileRow, long: bool) -> FileView:
    entry: FileView = {"fileindex": f.file_index, "path": display_path(f.full_path)}
    if long:
        a = decode_attributes(f.lstat)
        entry.update(
            {
                "type": a.type.name.lower(),
                "mode": oct(a.mode),
                "uid": a.uid,
                "gid": a.gid,
                "size": a.size,
                "mtime": _when(a.mtime_ns / 1e9),
                "digest": f.digest,
                "deleted": f.file_index == 0,
            }
        )
    return entry


LIST_USAGE = (
    "list jobs [job=NAME] [client=] [jobstatus=] [order=asc|desc] [limit=N] [offset=N] | jobid=N | "
    "volumes [pool=] [limit=] [offset=] | pools | files jobid=N [limit=] [offset=] | joblog jobid=N"
)


@command("list", usage=LIST_USAGE)
async def list_(session: Session, args: Args) -> Reply:
    """List catalog records."""
    return await _list(session, args, long=False)


@command("llist", usage="l" + LIST_USAGE)
async def llist(session: Session, args: Args) -> Reply:
    """List catalog records with every column."""
    return await _list(session, args, long=True)


VOLUME_STATUSES = (
    "Append",
    "Full",
    "Used",
    "Error",
    "Purged",
    "Recycle",
    "Disabled",
    "Archive",
    "Read-Only",
)


@command("delete", usage="delete jobid=N[,M] yes")
async def delete(session: Session, args: Args) -> Reply:
    """Delete jobs from the catalog; a deleted job's copies are promoted to backups."""
    raw = args.get("jobid") or ""
    try:
        ids = [int(x) for x in raw.split(",") if x.strip()]
    except ValueError as exc:
        raise CommandError("usage: delete jobid=N[,M] yes") from exc
    if not ids:
        raise CommandError("usage: delete jobid=N[,M] yes")
    director = session.director
    require_catalog(session)
    running = [
        i for i in ids if i in director.queue.jobs and director.queue.jobs[i].status not in st.FINAL
    ]
    if running:
        raise CommandError(
            f"JobId(s) {','.join(map(str, running))} are queued or running; cancel them first"
        )
    lines, data = [], []
    for job_id in ids:  # every one is checked before any is deleted
        row = await director.db.get_job(job_id)
        if row is None:
            raise CommandError(f"JobId {job_id} is not in the catalog")
        require_job(session, row)
    for job_id in ids:
        promoted = await director.db.delete_job(job_id)
        lines.append(
            f"JobId {job_id} deleted from the catalog."
            + "".join(
                f"\nCopy JobId {p} of JobId {job_id} was promoted to a Backup job."
                for p in promoted
            )
        )
        data.append({"jobid": job_id, "promoted": promoted})
    return Reply(text="\n".join(lines), data={"delete": data})


@command("update", usage="update volume=NAME volstatus=STATUS")
async def update(session: Session, args: Args) -> Reply:
    """Change a volume's status in the catalog (for example Error, Disabled or Append)."""
    volume, status = args.get("volume"), args.get("volstatus")
    if not volume or not status:
        raise CommandError("usage: update volume=NAME volstatus=STATUS")
    wanted = next((s for s in VOLUME_STATUSES if s.lower() == status.lower()), None)
    if wanted is None:
        raise CommandError(f"volstatus={status}: use one of {', '.join(VOLUME_STATUSES)}")
    director = session.director
    require_catalog(session)
    media = await director.db.get_media(volume)
    if media is None or not volume_visible(session, media):  # another pool's volume is not there
        raise CommandError(f"no volume named {volume!r} in the catalog")
    await director.db.update_media(volume, VolStatus=wanted)
    director.engine.media_added()
    return Reply(
        text=f"New Volume status is: {wanted}",
        data={"update": {"volume": volume, "volstatus": wanted}},
    )
