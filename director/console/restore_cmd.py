"""`restore`: parse the command, show what it selected, confirm, submit (planning is director/restore/)."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from director.console.acl import (
    job_visible,
    require,
    require_all,
    require_catalog,
    require_job,
    require_resolved,
    require_where,
)
from director.console.names import check, check_all
from director.console.registry import Args, CommandError, Reply, Session, command
from director.console.restore_tree import enter_tree
from director.jobs.errors import JobError
from director.jobs.setup import resolve
from director.restore.plan import (
    DEFAULT_WHERE,
    Plan,
    RestoreOptions,
    RestoreQuery,
    RestoreRefused,
    RestoreRequest,
    choose_files,
    plan_restore,
    restore_request,
)
from director.restore.selection import Selection

if TYPE_CHECKING:
    from director.config import JobResource

USAGE = (
    'restore [jobid=N[,M] [select]] [client=NAME] [fileset=NAME] [before="YYYY-MM-DD HH:MM:SS"] '
    "[file=PATH]... [directory=PATH] [fileregex=RE] [where=DIR] [replace=always|ifnewer|ifolder|never] "
    "[strip_prefix=] [add_prefix=] [add_suffix=] [regexwhere=!a!b!] [restorejob=] [restoreclient=] "
    "[storage=] [privileged=yes] [select] [all] [done] [yes]"
)


def _parse_before(text: str | None) -> float | None:
    if not text:
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return time.mktime(time.strptime(text, fmt))
        except ValueError:
            continue
    raise CommandError(f"cannot parse before={text!r}; use YYYY-MM-DD HH:MM:SS")


def _query(session: Session, args: Args) -> RestoreQuery:
    raw_ids = args.get("jobid")
    try:
        ids = tuple(int(x) for x in raw_ids.split(",") if x.strip()) if raw_ids else ()
    except ValueError as exc:
        raise CommandError(f"bad jobid list {raw_ids!r}") from exc
    if raw_ids is not None and not ids:
        raise CommandError(f"bad jobid list {raw_ids!r}")
    return RestoreQuery(
        job_ids=ids,
        chain=args.has("select"),
        client=args.get("client"),
        fileset=args.get("fileset"),
        before=_parse_before(args.get("before")),
        visible=lambda row: job_visible(session, row),
    )


def _restore_job(session: Session, name: str | None) -> JobResource:
    config = session.director.config
    checked = check(session, "restore job", name)
    if checked is not None:
        return config.jobs[checked]
    restores = [
        j for j in config.jobs.values() if j.type == "Restore" and session.acl("job", j.name)
    ]
    if not restores:
        raise CommandError("no Job with Type = Restore is configured")
    return restores[0]


def _options(session: Session, args: Args, restore_job: JobResource) -> RestoreOptions:
    where = args.get("where")
    if where is None:
        where = restore_job.where or DEFAULT_WHERE
    try:
        return RestoreOptions(
            restore_job=restore_job.name,
            client=args.get("restoreclient") or args.get("client") or restore_job.client,
            where=where,
            replace=(args.get("replace") or restore_job.replace or "always").lower(),
            strip_prefix=args.get("strip_prefix") or restore_job.strip_prefix,
            add_prefix=args.get("add_prefix") or restore_job.add_prefix,
            add_suffix=args.get("add_suffix") or restore_job.add_suffix,
            regex_where=args.get("regexwhere") or restore_job.regex_where,
            storage=args.get("storage"),
            privileged_content=(args.get("privileged") or "no").lower() in ("yes", "true", "1"),
        )
    except RestoreRefused as exc:
        raise CommandError(str(exc)) from exc


def _check_options(session: Session, options: RestoreOptions, restore_job: JobResource) -> None:
    """Refuse early what is known before planning: the Restore job and its Client, FileSet and
    Pool (the command line's or the Restore job's own), a named Storage, the Where. What it
    finally reads from is checked again when the request exists (`_check_request`)."""
    require_all(
        session,
        restore_job=restore_job.name,
        client=options.client,  # restoreclient=, client=, or the Restore job's own
        fileset=restore_job.file_set,
        pool=restore_job.pool,
        storage=options.storage,
    )
    require_where(session, options.where)
    if options.regex_where:
        require_where(session, options.regex_where)


async def _check_request(session: Session, prepared: RestoreRequest) -> None:
    """The Restore job as it will run: every resource `resolve` fills in (Client, FileSet, Pool,
    the Storage of the first volume or the Restore job's own), every Storage a volume is read
    from, and every copy job read instead of an original."""
    try:
        resolved = resolve(session.director.config, prepared.request)
    except JobError as exc:
        raise CommandError(str(exc)) from exc
    require_resolved(session, resolved)
    for storage in sorted(prepared.storages_read(resolved.storage)):
        require(session, "storage", storage)
    await _check_jobs(session, prepared.substitutions.values())


async def _check_jobs(session: Session, job_ids: Iterable[int]) -> None:
    """Each job restored from must be one the console may see (its Job, Client, Pool, FileSet)."""
    for job_id in job_ids:
        row = await session.director.db.get_job(job_id)
        if row is not None:
            require_job(session, row)


async def _submit(session: Session, plan: Plan, options: RestoreOptions) -> Reply:
    director = session.director
    try:
        prepared = await restore_request(director.db, plan, options)
    except RestoreRefused as exc:
        raise CommandError(str(exc)) from exc
    await _check_request(session, prepared)
    try:
        jcr = await director.submit(prepared.request)
    except JobError as exc:
        raise CommandError(str(exc)) from exc
    notes = "".join(
        f"JobId {orig}'s volumes are unavailable; reading its copy JobId {copy} instead.\n"
        for orig, copy in prepared.substitutions.items()
    )
    text = (
        f"{plan.selected_text()}\n{notes}"
        f"Bootstrap records written for {len(prepared.bootstrap)} volume session(s); "
        f"{prepared.expected_files} files selected from JobId(s) {','.join(map(str, plan.job_ids))}.\n"
        f"Job queued. JobId={jcr.job_id}"
    )
    return Reply(
        text=text,
        data={
            "restore": {
                "jobid": jcr.job_id,
                "job": jcr.unique,
                "files": prepared.expected_files,
                "jobids": plan.job_ids,
                "where": options.where,
                "copies_used": {str(k): v for k, v in prepared.substitutions.items()},
            }
        },
    )


@command("restore", usage=USAGE)
async def restore(session: Session, args: Args) -> Reply:
    """Restore files: exact JobIds, a job's restore chain (jobid=N select), or a client's latest state."""
    director = session.director
    require_catalog(session)
    restore_job = _restore_job(session, args.get("restorejob"))
    check_all(session, restoreclient=args.get("restoreclient"), storage=args.get("storage"))
    for kind in ("client", "fileset"):
        value = args.get(kind)
        if value is not None:
            check(session, kind, value, also=await director.db.known_names(kind))
    query = _query(session, args)
    options = _options(session, args, restore_job)
    _check_options(session, options, restore_job)
    await _check_jobs(session, query.job_ids)  # before planning reads their files
    try:
        plan: Plan = await director.db.run(
            functools.partial(plan_restore, query=query, default_fileset=restore_job.file_set)
        )
    except RestoreRefused as exc:
        raise CommandError(str(exc)) from exc
    await _check_jobs(session, plan.job_ids)  # the chain `select` and `client=` found
    files = [os.fsencode(f) for f in args.all("file")]
    directories = [os.fsencode(args.get("directory") or "")] if args.get("directory") else []
    if files or directories or args.get("fileregex") or args.has("all"):
        selection = Selection(
            files=tuple(files),
            directories=tuple(directories),
            fileregex=args.get("fileregex"),
            all_files=args.has("all") and not (files or directories),
        )
        await choose_files(director.db, plan, selection)
        if args.has("yes") or session.api:
            return await _submit(session, plan, options)
        return _confirm(session, plan, options)
    if session.api:
        raise CommandError(
            "restore in API mode needs a selection: all, file=, directory= or fileregex="
        )
    return enter_tree(session, plan, lambda p: _confirm(session, p, options))


def _confirm(session: Session, plan: Plan, options: RestoreOptions) -> Reply:
    text = (
        f"{plan.selected_text()}\n"
        f"{plan.chosen.files if plan.chosen else 0} files selected to be restored from JobId(s) {','.join(map(str, plan.job_ids))}.\n"
        f"Restore job: {options.restore_job}, Where: {options.where}, Replace: {options.replace}"
    )

    async def answer(line: str) -> Reply:
        if line.lower() in ("yes", "y"):
            return await _submit(session, plan, options)
        return Reply(text="Restore canceled.", data={"restore": {"started": False}})

    session.pending = answer
    return Reply(
        text=text,
        data={
            "restore": {
                "selected": plan.chosen.files if plan.chosen else 0,
                "jobids": plan.job_ids,
            }
        },
        prompt="OK to run? (yes/no): ",
    )
