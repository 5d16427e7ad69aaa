"""`restore`: choose jobs and files from the catalog, build the bootstrap, queue a Restore job."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Any

from director.catalog import FileRow, JobMediaRow, JobRow
from director.console.registry import Args, CommandError, Reply, Session, command
from director.console.restore_tree import enter_tree
from director.jobs.errors import JobError
from director.jobs.setup import RunRequest
from director.restore.bootstrap import build_bootstrap, hardlink_carriers
from director.restore.selection import backup_chain, latest_files, live, select
from filed.restore import REPLACE_POLICIES

USAGE = ("restore [jobid=N[,M]] [client=NAME] [fileset=NAME] [before=\"YYYY-MM-DD HH:MM:SS\"] "
         "[file=PATH]... [directory=PATH] [fileregex=RE] [where=DIR] [replace=always|ifnewer|ifolder|never] "
         "[strip_prefix=] [add_prefix=] [add_suffix=] [regexwhere=!a!b!] [restorejob=] [restoreclient=] "
         "[storage=] [select] [all] [done] [yes]")


@dataclass
class Plan:
    jobs: list[JobRow]
    files: dict[bytes, FileRow]
    chosen: dict[bytes, FileRow] = field(default_factory=dict)


def _parse_before(text: str | None) -> float | None:
    if not text:
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return time.mktime(time.strptime(text, fmt))
        except ValueError:
            continue
    raise CommandError(f"cannot parse before={text!r}; use YYYY-MM-DD HH:MM:SS")


def _only(names: list[str], kind: str, given: str | None) -> str:
    if given:
        if given not in names:
            raise CommandError(f"no {kind} named {given!r} (known: {', '.join(sorted(names)) or 'none'})")
        return given
    if len(names) == 1:
        return names[0]
    raise CommandError(f"restore: choose a {kind} with {kind}=NAME ({', '.join(sorted(names))})")


def _plan(catalog: Any, args: Args, restore_job: Any) -> Plan:
    """Runs on the catalog thread: which jobs, and the latest state of their files."""
    raw_ids = args.get("jobid")
    if raw_ids:
        try:
            ids = sorted({int(x) for x in raw_ids.split(",") if x.strip()})
        except ValueError as exc:
            raise CommandError(f"bad jobid list {raw_ids!r}") from exc
        jobs = []
        for job_id in ids:
            job = catalog.get_job(job_id)
            if job is None:
                raise CommandError(f"JobId {job_id} is not in the catalog")
            if job.type not in ("B", "C") or job.status not in ("T", "W"):
                raise CommandError(f"JobId {job_id} is not a successful backup or copy (type {job.type}, "
                                   f"status {job.status})")
            jobs.append(job)
    else:
        clients = [j.client for j in catalog.list_jobs(job_type="B") if j.client]
        client = _only(sorted(set(clients)), "client", args.get("client"))
        client_id = catalog.client_id(client)
        fileset_name = args.get("fileset") or restore_job.file_set
        fileset_ids = catalog.fileset_ids(fileset_name) if fileset_name else []
        candidates = catalog.list_jobs(client_id=client_id, job_type="B")
        if fileset_ids:
            candidates = [j for j in candidates if j.fileset_id in fileset_ids]
        jobs = backup_chain(candidates, client_id, None, _parse_before(args.get("before")))
        if not jobs:
            raise CommandError(f"no successful Full backup of client {client!r} to restore from")
    files = live(latest_files([(job, catalog.list_files(job.job_id)) for job in jobs]))
    return Plan(jobs, files)


def _resolve_restore_job(session: Session, name: str | None) -> Any:
    config = session.director.config
    restores = [j for j in config.jobs.values() if j.type == "Restore"]
    if name:
        job = config.jobs.get(name)
        if job is None or job.type != "Restore":
            raise CommandError(f"no Restore job named {name!r}")
        return job
    if not restores:
        raise CommandError("no Job with Type = Restore is configured")
    return restores[0]


async def _queue(session: Session, args: Args, plan: Plan, restore_job: Any) -> Reply:
    director = session.director
    if not plan.chosen:
        raise CommandError("no files selected; nothing to restore")
    selected = list(plan.chosen.values())
    job_ids = [j.job_id for j in plan.jobs]
    all_rows = list(plan.files.values())
    hidden = hardlink_carriers(selected, all_rows) | hardlink_carriers(
        selected, [r for job_id in job_ids for r in await director.catalog_call("list_files", job_id)])
    jobmedia, substitutions = await _usable_media(director, job_ids)
    bootstrap = build_bootstrap(selected, hidden, jobmedia, job_ids)
    replace = (args.get("replace") or restore_job.replace or "always").lower()
    if replace not in REPLACE_POLICIES:
        raise CommandError(f"replace={replace}: use {', '.join(REPLACE_POLICIES)}")
    where = args.get("where")
    if where is None:
        where = restore_job.where or "/tmp/strongroom-restores"
    expected = sum(1 for r in selected if r.file_index > 0)
    params: dict[str, Any] = {
        "bootstrap": bootstrap, "where": os.fsencode(where), "replace": replace,
        "strip_prefix": os.fsencode(args.get("strip_prefix") or restore_job.strip_prefix or "") or None,
        "add_prefix": os.fsencode(args.get("add_prefix") or restore_job.add_prefix or "") or None,
        "add_suffix": os.fsencode(args.get("add_suffix") or restore_job.add_suffix or "") or None,
        "regex_where": args.get("regexwhere") or restore_job.regex_where,
        "hidden_indexes": tuple(sorted(hidden)),
        "expected_files": expected,
        "source_jobs": job_ids,
    }
    storage = args.get("storage")
    media = {m.volume_name: m.storage for m in await director.catalog_call("list_media", None)}
    params["volume_storage"] = {b.volume_name: media[b.volume_name] for b in bootstrap if media.get(b.volume_name)}
    params["storage_override"] = bool(storage)
    if not storage and bootstrap:
        storage = params["volume_storage"].get(bootstrap[0].volume_name)
    req = RunRequest(job=restore_job.name, client=args.get("restoreclient") or args.get("client") or restore_job.client,
                     storage=storage, params=params)
    try:
        jcr = await director.submit(req)
    except JobError as exc:
        raise CommandError(str(exc)) from exc
    notes = "".join(f"JobId {orig}'s volumes are unavailable; reading its copy JobId {copy} instead.\n"
                    for orig, copy in substitutions.items())
    text = notes + (f"Bootstrap records written for {len(bootstrap)} volume session(s); "
            f"{expected} files selected from JobId(s) {','.join(map(str, job_ids))}.\n"
            f"Job queued. JobId={jcr.job_id}")
    return Reply(text=text, data={"restore": {"jobid": jcr.job_id, "job": jcr.unique, "files": expected,
                                              "jobids": job_ids, "where": where,
                                              "copies_used": {str(k): v for k, v in substitutions.items()}}})


UNAVAILABLE = frozenset({"Error", "Purged", "Disabled", "Recycle"})


async def _usable_media(director: Any, job_ids: list[int]) -> tuple[list[JobMediaRow], dict[int, int]]:
    """JobMedia for the jobs; a job whose volumes are unavailable is read from a good copy of it."""
    status = {m.volume_name: m.status for m in await director.catalog_call("list_media", None)}
    rows: list[JobMediaRow] = await director.catalog_call("list_jobmedia", job_ids)
    out: list[JobMediaRow] = []
    substitutions: dict[int, int] = {}
    for job_id in job_ids:
        mine = [r for r in rows if r.job_id == job_id]
        if mine and all(status.get(r.volume_name) not in UNAVAILABLE for r in mine):
            out.extend(mine)
            continue
        for copy in await director.catalog_call("copies_of", job_id):
            theirs = await director.catalog_call("list_jobmedia", [copy.job_id])
            if theirs and all(status.get(r.volume_name) not in UNAVAILABLE for r in theirs):
                # A copy holds the same records under the same file indexes, in its own session.
                out.extend(dataclasses.replace(r, job_id=job_id) for r in theirs)
                substitutions[job_id] = copy.job_id
                break
        else:
            out.extend(mine)
    return out, substitutions


@command("restore", usage=USAGE)
async def restore(session: Session, args: Args) -> Reply:
    """Restore files: by jobid, or the latest state of a client before a time; files, directories or all."""
    director = session.director
    restore_job = _resolve_restore_job(session, args.get("restorejob"))
    for key in ("client", "restoreclient"):
        value = args.get(key)
        if value and not session.acl("client", value):
            raise CommandError(f"client {value!r} is not permitted for console {session.console!r}")
    plan: Plan = await director.run_in_thread(_plan, director.catalog, args, restore_job)
    files = [os.fsencode(f) for f in args.all("file")]
    directories = [os.fsencode(args.get("directory") or "")] if args.get("directory") else []
    if files or directories or args.get("fileregex") or args.has("all"):
        plan.chosen = select(plan.files, file=files, directory=directories, fileregex=args.get("fileregex"),
                             all_files=args.has("all") and not (files or directories))
        if args.has("yes") or session.api:
            return await _queue(session, args, plan, restore_job)
        return _confirm(session, args, plan, restore_job)
    if session.api:
        raise CommandError("restore in API mode needs a selection: all, file=, directory= or fileregex=")
    return enter_tree(session, plan, lambda p: _confirm(session, args, p, restore_job))


def _confirm(session: Session, args: Args, plan: Plan, restore_job: Any) -> Reply:
    where = args.get("where") or restore_job.where
    text = (f"{len(plan.chosen)} files selected to be restored from JobId(s) "
            f"{','.join(str(j.job_id) for j in plan.jobs)}.\n"
            f"Restore job: {restore_job.name}, Where: {where}, Replace: {args.get('replace') or restore_job.replace}")
    async def answer(line: str) -> Reply:
        if line.lower() in ("yes", "y"):
            return await _queue(session, args, plan, restore_job)
        return Reply(text="Restore canceled.", data={"restore": {"started": False}})

    session.pending = answer
    return Reply(text=text, data={"restore": {"selected": len(plan.chosen)}}, prompt="OK to run? (yes/no): ")
