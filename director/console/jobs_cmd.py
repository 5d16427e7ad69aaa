"""Job commands: run, cancel, wait, messages, estimate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any

from director.catalog import JobRow
from director.console.acl import (
    job_visible,
    require,
    require_all,
    require_job,
    require_resolved,
    visible_messages,
)
from director.console.names import check, check_all
from director.console.paging import Lines, listing
from director.console.registry import Args, CommandError, Reply, Session, command
from director.joblog import LogLine
from director.jobs import status as st
from director.jobs.control import LEVEL_NAMES, TYPE_NAMES, JobControl
from director.jobs.copy import resolve_targets
from director.jobs.errors import JobError
from director.jobs.setup import RunRequest, resolve

WAIT_TIMEOUT = 24 * 3600.0


def _parse_when(text: str | None) -> float | None:
    if not text:
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            return time.mktime(time.strptime(text, fmt))
        except ValueError:
            continue
    raise CommandError(f"cannot parse when={text!r}; use YYYY-MM-DD HH:MM:SS")


def _request(args: Args) -> RunRequest:
    name = args.get("job")
    if not name:
        raise CommandError(
            "usage: run job=NAME [level=] [client=] [fileset=] [pool=] [storage=] [priority=] [when=] "
            "[expires=] [yes]"
        )
    priority = args.get("priority")
    return RunRequest(
        job=name,
        level=args.get("level"),
        client=args.get("client"),
        fileset=args.get("fileset"),
        pool=args.get("pool"),
        storage=args.get("storage"),
        priority=int(priority) if priority and priority.isdigit() else None,
        when=_parse_when(args.get("when")),
        params={"next_pool": args.get("nextpool")} if args.get("nextpool") else {},
        expires=_parse_when(args.get("expires")),
    )


def _describe(session: Session, req: RunRequest) -> tuple[str, dict[str, Any]]:
    check_all(
        session,
        job=req.job,
        client=req.client,
        fileset=req.fileset,
        pool=req.pool,
        storage=req.storage,
    )
    check(session, "pool", req.text("next_pool"))
    try:
        resolved = resolve(session.director.config, req)
    except JobError as exc:
        raise CommandError(str(exc)) from exc
    # the defaults the Job (and its JobDefs) fill in, not only what the command line named
    require_resolved(session, resolved)
    require(session, "schedule", req.text("scheduled"))
    data = {
        "job": resolved.resource.name,
        "type": TYPE_NAMES.get(resolved.job_type, resolved.job_type),
        "level": LEVEL_NAMES.get(resolved.level, ""),
        "client": resolved.client,
        "fileset": resolved.fileset,
        "pool": resolved.pool,
        "storage": resolved.storage,
        "priority": resolved.priority,
        "when": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(req.when or time.time())),
    }
    if resolved.job_type in ("c", "g"):
        try:
            targets = resolve_targets(
                session.director.config, resolved.resource, req.pool, req.text("next_pool")
            )
        except JobError as exc:
            raise CommandError(str(exc)) from exc
        require_all(
            session,
            pool=targets.source_pool,
            next_pool=targets.target_pool,
            storage=targets.target_storage,
        )
        data.update(
            pool=targets.source_pool,
            next_pool=targets.target_pool,
            next_storage=targets.target_storage,
            selection_type=resolved.resource.selection_type or "Job",
            selection_pattern=resolved.resource.selection_pattern,
        )
        text = "\n".join(
            [
                f"Run {data['type']} job",
                f"JobName:       {data['job']}",
                f"Selection:     {data['selection_type']} "
                f"{data['selection_pattern'] or ''}".rstrip(),
                f"Source Pool:   {targets.source_pool}",
                f"Target Pool:   {targets.target_pool}",
                f"Target Storage: {targets.target_storage}",
                f"When:          {data['when']}",
                f"Priority:      {data['priority']}",
            ]
        )
        return text, data
    text = "\n".join(
        [
            "Run Backup job" if resolved.job_type == "B" else f"Run {data['type']} job",
            f"JobName:  {data['job']}",
            f"Level:    {data['level']}",
            f"Client:   {data['client']}",
            f"FileSet:  {data['fileset']}",
            f"Pool:     {data['pool']}",
            f"Storage:  {data['storage']}",
            f"When:     {data['when']}",
            f"Priority: {data['priority']}",
        ]
    )
    return text, data


async def _start(session: Session, req: RunRequest) -> Reply:
    _describe(session, req)  # again: a reload since the question may have changed the defaults
    try:
        jcr = await session.director.submit(req)
    except JobError as exc:
        raise CommandError(str(exc)) from exc
    return Reply(
        text=f"Job queued. JobId={jcr.job_id}",
        data={"run": {"jobid": jcr.job_id, "job": jcr.unique}},
    )


@command(
    "run",
    usage="run job=NAME [level=] [client=] [fileset=] [pool=] [storage=] [priority=] [when=] [expires=] "
    "[yes]",
)
async def run(session: Session, args: Args) -> Reply:
    """Run a job now (or at when=); without `yes` show the resolved job and ask."""
    req = _request(args)
    require(session, "job", req.job)
    text, data = _describe(session, req)
    if args.has("yes"):
        return await _start(session, req)
    if session.api:
        return Reply(text=text, data={"run": {"resolved": data, "started": False}})

    async def answer(line: str) -> Reply:
        if line.lower() in ("yes", "y"):
            return await _start(session, req)
        return Reply(text="Job not run.", data={"run": {"started": False}})

    session.pending = answer
    return Reply(text=text, data={"run": {"resolved": data}}, prompt="OK to run? (yes/no): ")


def find_job(session: Session, args: Args) -> JobControl:
    raw = args.get("jobid") or (args.words[0] if args.words else None)
    if raw is None or not raw.isdigit():
        raise CommandError("usage: ... jobid=N")
    jcr = session.director.queue.jobs.get(int(raw))
    if jcr is None or not job_visible(session, jcr):  # a forbidden job is not there, as in `list`
        raise CommandError(f"JobId {raw} is not running or queued on this Director")
    return jcr


@command("cancel", usage="cancel jobid=N | job=UNIQUE")
async def cancel(session: Session, args: Args) -> Reply:
    """Cancel a job in any state (scheduled, queued, waiting, running)."""
    if args.get("job"):
        match = [
            j
            for j in session.director.queue.jobs.values()
            if j.unique == args.get("job") and job_visible(session, j)
        ]
        if not match:
            raise CommandError(f"job {args.get('job')!r} not found")
        jcr = match[0]
    else:
        jcr = find_job(session, args)
    text = await session.director.cancel(jcr)
    return Reply(text=text, data={"cancel": {"jobid": jcr.job_id, "message": text}})


@command("wait", usage="wait [jobid=N] [timeout=SECONDS]")
async def wait(session: Session, args: Args) -> Reply:
    """Wait until a job (or every running and queued job) has finished; a job that has ended already
    reports its final status from the catalog. Fails unless every job ended T or W."""
    timeout = float(args.get("timeout") or WAIT_TIMEOUT)
    queue = session.director.queue
    if args.get("jobid") or args.words:
        raw = args.get("jobid") or args.words[0]
        if not raw.isdigit():
            raise CommandError("usage: wait [jobid=N] [timeout=SECONDS]")
        jcr = queue.jobs.get(int(raw))
        if jcr is None:
            return await _ended(session, int(raw))
        require_job(session, jcr)
        targets = [jcr]
    else:
        targets = [j for j in queue.jobs.values() if job_visible(session, j)]
    try:
        async with asyncio.timeout(timeout):
            for jcr in targets:
                await jcr.done.wait()
    except TimeoutError as exc:
        raise CommandError(f"timed out after {timeout:g} s") from exc
    return _waited([(j.job_id, j.unique, j.status) for j in targets])


async def _ended(session: Session, job_id: int) -> Reply:
    """`wait jobid=N` for a job no longer in the queue: its final status, as the catalog has it."""
    row: JobRow | None = await session.director.db.get_job(job_id)
    if row is None:
        raise CommandError(f"JobId {job_id} is not in the catalog")
    require_job(session, row)
    if row.status not in st.FINAL:
        raise CommandError(
            f"JobId {job_id} has status {row.status} ({st.describe(row.status)}) in the catalog "
            "but is not queued on this Director"
        )
    return _waited([(row.job_id, row.job, row.status)])


def _waited(jobs: list[tuple[int, str, str]]) -> Reply:
    data = [
        {"jobid": job_id, "job": unique, "jobstatus": status} for job_id, unique, status in jobs
    ]
    text = "\n".join(
        f"JobId={job_id} Job={unique} JobStatus={status} ({st.describe(status)})"
        for job_id, unique, status in jobs
    )
    # Scripted, 0 only when every job ended T: a W (files vanished, warnings) is worth a look too.
    failed = any(status != st.TERMINATED for _, _, status in jobs)
    return Reply(text=text or "No jobs.", data={"wait": data}, ok=not failed)


@command("messages", usage="messages")
async def messages(session: Session, args: Args) -> Reply:
    """Show and clear the job messages collected since the last `messages`."""
    director = session.director
    lines = await visible_messages(session, director.messages.drain(session.console))

    async def rows() -> AsyncGenerator[dict[str, Any], None]:
        for m in lines:
            yield {
                "time": m.time,
                "jobid": m.job_id,
                "job": m.job,
                "level": m.level,
                "text": m.text,
            }

    def render(row: dict[str, Any]) -> str:
        return LogLine(row["time"], row["jobid"], row["job"], row["level"], row["text"]).render(
            director.name
        )

    return listing("messages", rows(), Lines(render, empty="You have no messages."))
