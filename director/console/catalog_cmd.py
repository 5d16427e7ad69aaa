"""Catalog views: list / llist (jobs, jobid=, volumes, pools, files jobid=), status job=N."""

from __future__ import annotations

import time
from typing import Any

from director.console.format import display_path
from director.console.registry import Args, CommandError, Reply, Session, command
from director.jobs import status as st
from protocol.attributes import decode_attributes


def _when(epoch: float | None) -> str:
    return "" if not epoch else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def job_dict(job: Any) -> dict[str, Any]:
    return {
        "jobid": job.job_id, "job": job.job, "name": job.name, "type": job.type, "level": job.level,
        "jobstatus": job.status, "status": st.describe(job.status), "client": job.client, "fileset": job.fileset,
        "pool": job.pool, "schedtime": _when(job.sched_time), "starttime": _when(job.start_time),
        "endtime": _when(job.end_time), "jobfiles": job.files, "jobbytes": job.bytes, "readbytes": job.read_bytes,
        "joberrors": job.errors, "volsessionid": job.session_id, "volsessiontime": job.session_time,
        "priorjobid": job.prior_job_id, "comment": job.comment,
        "wait_reason": job.wait_reason if job.status not in st.FINAL else None,
        "retry": job.retry, "parentjobid": job.parent_job_id,
    }


def _live(session: Session, row: dict[str, Any]) -> dict[str, Any]:
    """A job the Director holds in memory shows its live status and wait reason."""
    jcr = session.director.queue.jobs.get(row["jobid"])
    if jcr is not None and row["jobstatus"] not in st.FINAL:
        row["jobstatus"], row["status"] = jcr.status, st.describe(jcr.status)
        row["wait_reason"] = jcr.wait.describe() if jcr.wait is not None else None
    return row


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "No results to list."
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    sep = "+" + "+".join("-" * (widths[c] + 2) for c in columns) + "+"
    head = "| " + " | ".join(c.ljust(widths[c]) for c in columns) + " |"
    body = ["| " + " | ".join(str(r.get(c, "") if r.get(c) is not None else "").rjust(widths[c])
                              if isinstance(r.get(c), int) else str(r.get(c) or "").ljust(widths[c]) for c in columns) + " |"
            for r in rows]
    return "\n".join([sep, head, sep, *body, sep])


def _long(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No results to list."
    width = max(len(k) for r in rows for k in r)
    return "\n\n".join("\n".join(f"{k.rjust(width)}: {'' if v is None else v}" for k, v in r.items()) for r in rows)


async def _list(session: Session, args: Args, long: bool) -> Reply:
    director = session.director
    what = (args.words[0].lower() if args.words else "")
    if "jobid" in args.options and what != "files":
        raw = args.get("jobid") or ""
        if not raw.isdigit():
            raise CommandError("usage: list jobid=N")
        job = await director.catalog_call("get_job", int(raw))
        rows = [_live(session, job_dict(job))] if job is not None else []
        return Reply(text=_long(rows) if long else _table(rows, ["jobid", "name", "starttime", "type", "level",
                                                                  "jobfiles", "jobbytes", "jobstatus"]),
                     data={"jobs": rows})
    if what in ("jobs", ""):
        jobs = await director.catalog_call("list_jobs", job_name=args.get("job"), limit=int(args.get("limit") or 0) or None)
        rows = [_live(session, job_dict(j)) for j in jobs]
        if args.get("jobstatus"):
            rows = [r for r in rows if r["jobstatus"] == args.get("jobstatus")]
        if args.get("client"):
            rows = [r for r in rows if r["client"] == args.get("client")]
        columns = ["jobid", "name", "client", "starttime", "type", "level", "jobfiles", "jobbytes", "jobstatus"]
        if any(r["wait_reason"] for r in rows):
            columns.append("wait_reason")
        return Reply(text=_long(rows) if long else _table(rows, columns), data={"jobs": rows})
    if what in ("volumes", "media"):
        media = await director.catalog_call("list_media", None)
        rows = [{"mediaid": m.media_id, "volumename": m.volume_name, "pool": m.pool, "volstatus": m.status,
                 "mediatype": m.media_type, "volbytes": m.bytes, "volblocks": m.blocks, "voljobs": m.jobs,
                 "volfiles": m.files,
                 "lastwritten": _when(m.last_written), "storage": m.storage} for m in media]
        if args.get("pool"):
            rows = [r for r in rows if r["pool"] == args.get("pool")]
        columns = ["mediaid", "volumename", "volstatus", "pool", "volbytes", "voljobs", "mediatype", "lastwritten"]
        return Reply(text=_long(rows) if long else _table(rows, columns), data={"volumes": rows})
    if what == "pools":
        rows = await director.catalog_call("list_pools")
        return Reply(text=_long(rows) if long else _table(rows, list(rows[0]) if rows else []), data={"pools": rows})
    if what == "files":
        raw = args.get("jobid") or ""
        if not raw.isdigit():
            raise CommandError("usage: list files jobid=N")
        files = await director.catalog_call("list_files", int(raw))
        rows = []
        for f in files:
            entry: dict[str, Any] = {"fileindex": f.file_index, "path": display_path(f.full_path)}
            if long:
                a = decode_attributes(f.lstat)
                entry.update(type=a.type.name.lower(), mode=oct(a.mode), uid=a.uid, gid=a.gid, size=a.size,
                             mtime=_when(a.mtime_ns / 1e9), digest=f.digest, deleted=f.file_index == 0)
            rows.append(entry)
        text = "\n".join(("(deleted) " if r["fileindex"] == 0 else "") + r["path"] for r in rows) if not long else _long(rows)
        return Reply(text=text or "No files.", data={"files": rows})
    raise CommandError(f"list {what}: use jobs, jobid=N, volumes, pools or files jobid=N")


@command("list", usage="list jobs [job=NAME] [client=] [jobstatus=] | jobid=N | volumes [pool=] | pools | files jobid=N")
async def list_(session: Session, args: Args) -> Reply:
    """List catalog records."""
    return await _list(session, args, long=False)


@command("llist", usage="llist jobs | jobid=N | volumes | pools | files jobid=N")
async def llist(session: Session, args: Args) -> Reply:
    """List catalog records with every column."""
    return await _list(session, args, long=True)


VOLUME_STATUSES = ("Append", "Full", "Used", "Error", "Purged", "Recycle", "Disabled", "Archive", "Read-Only")


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
    running = [i for i in ids if i in director.queue.jobs and director.queue.jobs[i].status not in st.FINAL]
    if running:
        raise CommandError(f"JobId(s) {','.join(map(str, running))} are queued or running; cancel them first")
    lines, data = [], []
    for job_id in ids:
        if await director.catalog_call("get_job", job_id) is None:
            raise CommandError(f"JobId {job_id} is not in the catalog")
        promoted = await director.catalog_call("delete_job", job_id)
        lines.append(f"JobId {job_id} deleted from the catalog."
                     + "".join(f"\nCopy JobId {p} of JobId {job_id} was promoted to a Backup job." for p in promoted))
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
    if await director.catalog_call("get_media", volume) is None:
        raise CommandError(f"no volume named {volume!r} in the catalog")
    await director.catalog_call("update_media", volume, VolStatus=wanted)
    director.engine.media_added()
    return Reply(text=f"New Volume status is: {wanted}", data={"update": {"volume": volume, "volstatus": wanted}})
