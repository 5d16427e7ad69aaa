"""`status`: the Director's own status, or a File/Storage Daemon's relayed through the Director."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from director.console.acl import (
    job_visible,
    permitted,
    require,
    require_job,
    unrestricted,
    volume_visible,
)
from director.console.catalog_cmd import job_dict
from director.console.format import status_data, status_text
from director.console.registry import Args, CommandError, Reply, Session, command
from director.console.schedule_view import status_scheduler
from director.jobs import status as st
from director.jobs.control import JobControl
from director.peers import PeerError, query_client_status, query_storage_status
from protocol.messages import DaemonStatus, DeviceStatus

WAITING_SHOWN = 200


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _pick(session: Session, kind: str, name: str | None, names: list[str]) -> str:
    if name:
        return name
    if len(names) == 1:
        return names[0]
    raise CommandError(
        f"status {kind}=NAME: choose one of {', '.join(sorted(names)) or '(none configured)'}"
    )


def _director_text(session: Session, base: str) -> str:
    """bconsole's Director status: running jobs with live counters and rate, waiting jobs with why."""
    queue = session.director.queue
    head = base.split("Running Jobs:", maxsplit=1)[0].rstrip()
    refusal = session.director.engine.refusal()
    lines = [head, *([f"Catalog: {refusal}"] if refusal else []), "", "Running Jobs:"]
    for jcr in _visible(session, queue.running):
        info = jcr.summary()
        speed = info["rate"]
        rate = f" {speed / 1000:,.1f} KB/s" if speed else ""
        done = (
            f" {info['percent']:.0f}% ETA {_eta(info['eta'])}"
            if info.get("percent") is not None
            else ""
        )
        why = f" ({jcr.wait.describe()})" if jcr.wait else ""
        lines.append(
            f" JobId {jcr.job_id} {jcr.type_name} {jcr.level_name} {jcr.unique} is "
            f"{st.describe(jcr.status).lower()}{why}: files={info['jobfiles']:,} "
            f"bytes={info['jobbytes']:,}{rate}{done}"
        )
    if not _visible(session, queue.running):
        lines.append("No Jobs running.")
    lines += ["", "Waiting Jobs:"]
    waiting = _visible(
        session,
        [*queue.waiting, *(j for j in queue.jobs.values() if j.status == st.WAIT_START_TIME)],
    )
    for jcr in waiting[:WAITING_SHOWN]:
        why = f" ({jcr.wait.describe()})" if jcr.wait else ""
        lines.append(
            f" JobId {jcr.job_id} {jcr.unique} priority {jcr.priority}: {st.describe(jcr.status)}{why}"
        )
    if len(waiting) > WAITING_SHOWN:
        lines.append(f" … and {len(waiting) - WAITING_SHOWN:,} more (list jobs shows them all)")
    if not waiting:
        lines.append("No Jobs waiting.")
    lines.append("====")
    return "\n".join(lines)


def _visible(session: Session, jobs: Iterable[JobControl]) -> list[JobControl]:
    return [j for j in jobs if job_visible(session, j)]


async def visible_status(session: Session, status: DaemonStatus) -> DaemonStatus:
    """A daemon's status as the console may see it: the running jobs, device holders and waiters
    that are jobs it may see (by their unique names on this Director), and the volumes of pools
    and storages it may see. The Director's own console sees everything."""
    if unrestricted(session):
        return status
    mine = {j.unique for j in session.director.queue.jobs.values() if job_visible(session, j)}
    devices = [await _visible_device(session, d, mine) for d in status.devices]
    return status.model_copy(
        update={
            "running_jobs": tuple(j for j in status.running_jobs if j.job in mine),
            "devices": tuple(devices),
        }
    )


async def _visible_device(session: Session, device: DeviceStatus, mine: set[str]) -> DeviceStatus:
    volumes = []
    for name in device.volumes:
        media = await session.director.db.get_media(name)
        if media is not None and volume_visible(session, media):
            volumes.append(name)
    return device.model_copy(
        update={
            "reserved_by": tuple(n for n in device.reserved_by if n in mine),
            "volumes": tuple(volumes),
            # "<job> (<reason>): <text>"
            "waiting": tuple(w for w in device.waiting if w.split(" ", 1)[0] in mine),
        }
    )


async def _job_view(session: Session, job_id: int) -> Mapping[str, Any]:
    """A live job's summary, or its catalog row as `list` shows it."""
    director = session.director
    jcr = director.queue.jobs.get(job_id)
    if jcr is not None:
        require_job(session, jcr)
        return jcr.summary()
    job = await director.db.get_job(job_id)
    if job is None:
        raise CommandError(f"JobId {job_id} is not in the catalog")
    require_job(session, job)
    return job_dict(job)


async def _job_status(session: Session, raw: str) -> Reply:
    if not raw.isdigit():
        raise CommandError("usage: status job=JOBID")
    data = await _job_view(session, int(raw))
    wait = data.get("wait_reason")
    lines = [
        f"JobId {data['jobid']} Job {data['job']} is {st.describe(str(data['jobstatus']))} ({data['jobstatus']})",
        f"  Files={data.get('jobfiles', 0):,} Bytes={data.get('jobbytes', 0):,}"
        + (f" Rate={data['rate'] / 1000:.1f} KB/s" if data.get("rate") else ""),
    ]
    if isinstance(wait, dict):
        lines.append(f"  Waiting: {wait['code']} {wait['resource']}".rstrip())
    elif wait:
        lines.append(f"  Waiting: {wait}")
    if data.get("percent") is not None:
        lines.append(f"  Progress: {data['percent']:.1f}% ETA {_eta(data.get('eta'))}")
    if data.get("retry"):
        lines.append(f"  Retry {data['retry']}")
    if data.get("current_file"):
        lines.append(f"  Processing file: {data['current_file']}")
    return Reply(text="\n".join(lines), data={"job": data})


@command(
    "status",
    usage="status [dir | client=NAME | storage=NAME | job=JOBID | scheduler [days=N] [job=NAME]]",
)
async def status(session: Session, args: Args) -> Reply:
    """Report the status of the Director, a File Daemon or a Storage Daemon."""
    director = session.director
    config = director.config
    target = args.words[0].lower() if args.words else None
    if "client" in args.options or target == "client":
        name = _pick(
            session,
            "client",
            args.get("client"),
            [n for n in config.clients if permitted(session, "client", n)],
        )
        require(session, "client", name)
        try:
            result = await visible_status(session, await query_client_status(director, name))
        except PeerError as exc:
            return Reply(
                text=str(exc), data={"client": name, "error": str(exc), "step": exc.step}, ok=False
            )
        return Reply(text=status_text(result, "File Daemon"), data={"client": status_data(result)})
    if "storage" in args.options or target == "storage":
        name = _pick(
            session,
            "storage",
            args.get("storage"),
            [n for n in config.storages if permitted(session, "storage", n)],
        )
        require(session, "storage", name)
        try:
            result = await visible_status(session, await query_storage_status(director, name))
        except PeerError as exc:
            return Reply(
                text=str(exc), data={"storage": name, "error": str(exc), "step": exc.step}, ok=False
            )
        return Reply(
            text=status_text(result, "Storage Daemon"), data={"storage": status_data(result)}
        )
    if target in ("scheduler", "schedule"):
        return await status_scheduler(session, args)
    raw_job = args.get("job") or args.get("jobid")
    if raw_job is not None:
        return await _job_status(session, raw_job)
    if target in (None, "dir", "director", "all"):
        own = await visible_status(session, director.status())
        return Reply(
            text=_director_text(session, status_text(own, "Director")),
            data={
                "director": status_data(own),
                "catalog": {
                    "writable": director.engine.refusal() is None,
                    "error": director.engine.refusal(),
                },
                "running": [j.summary() for j in _visible(session, director.queue.running)],
                "waiting": [j.summary() for j in _visible(session, director.queue.waiting)],
            },
        )
    raise CommandError(
        f"unknown status target {target!r}; use dir, scheduler, client=NAME or storage=NAME"
    )
