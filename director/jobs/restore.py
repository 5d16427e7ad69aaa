"""DoNativeRestore: bootstrap to the SD, FD told where the SD is, records flow SD → FD."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from common.net import Connection
from director.jobs import status as st
from director.jobs.errors import JobCanceled, JobError
from director.jobs.links import (
    client_wait,
    connect,
    request,
    sd_certificate_name,
    serve_job,
    storage_wait,
)
from protocol.conversations import DIRECTOR_FROM_FD, DIRECTOR_FROM_READING_SD, Conversation
from protocol.jobs import (
    BootstrapSpec,
    FdJobSetup,
    FdRestore,
    FdStorage,
    JobEnd,
    JobMessage,
    JobProgress,
    Ok,
    SdJobAccepted,
    SdJobSetup,
    SdRun,
)
from protocol.messages import ErrorReply

if TYPE_CHECKING:
    from director.config import ClientResource, StorageResource
    from director.jobs.control import JobControl
    from director.jobs.services import JobServices


async def do_restore(svc: JobServices, jcr: JobControl) -> str:
    """Restore the selection, one pass per storage; return T or W, or raise for E and A.

    How a restore ends (#11): canceled, A. The Storage Daemon could not deliver the data (a volume
    missing or damaged), E at once. Otherwise every pass runs, and the job ends **E** when the
    File Daemon restored fewer files than the catalog selected ("restored N of M files ..."), and
    also E when the File Daemon reported any error even if the count is met: an error means part
    of the selection is not as it was backed up (a file skipped for a bad record, data that had no
    file to go to, a directory without its attributes), and an operator must see such a restore
    as not OK, not as a W to skim past. Files the replace policy kept as they were count as done
    (the File Daemon counts them, as Bareos counts JobFiles). More files than selected is W.
    An invalid regexwhere is refused before any daemon is contacted.
    """
    config = jcr.settings
    plan = jcr.restore
    if plan is None:
        raise JobError("the restore has no plan (no files were selected)")
    client = config.clients[jcr.named("Client")]
    bootstrap = plan.bootstrap
    if not bootstrap:
        raise JobError("nothing to restore: the selection is empty")
    check_regex_where(plan.regex_where)
    jcr.volumes = sorted({b.volume_name for b in bootstrap})
    # Volumes written on different storages are read in one pass per storage (Bareos does the same).
    volume_storage = plan.volume_storage
    passes: list[tuple[str, list[BootstrapSpec]]] = []
    for spec in bootstrap:
        default = jcr.storage or ""
        name = default if plan.storage_override else volume_storage.get(spec.volume_name, default)
        if not passes or passes[-1][0] != name:
            passes.append((name, []))
        passes[-1][1].append(spec)
    same_client = await _same_client(svc, jcr, plan.source_jobs)
    totals = [0, 0, 0]
    status = st.TERMINATED
    fd_failures: list[str] = []
    for storage_name, specs in passes:
        if storage_name not in config.storages:
            raise JobError(
                f"volume(s) {', '.join(s.volume_name for s in specs)} were written on storage "
                f"{storage_name!r}, which is not configured"
            )
        ends = await _one_pass(
            svc, jcr, client, config.storages[storage_name], specs, same_client=same_client
        )
        fd_end, sd_end = ends["fd"], ends["sd"]
        totals[0] += fd_end.files
        totals[1] += fd_end.bytes
        totals[2] += fd_end.errors + sd_end.errors
        jcr.files, jcr.bytes, jcr.errors = totals
        status = _pass_status(jcr, fd_end, sd_end, status)
        if fd_end.status not in st.OK:
            fd_failures.append(fd_end.text or f"ended with status {fd_end.status}")
    return _final_status(svc, jcr, status, fd_failures)


async def _same_client(svc: JobServices, jcr: JobControl, source_jobs: tuple[int, ...]) -> bool:
    """Whether every restored job was backed up from the client the files go to (the File Daemon
    strips privileged content when they go to another one)."""
    for job_id in source_jobs:
        row = await svc.db.get_job(job_id)
        if row is not None and row.client is not None and row.client != jcr.client:
            return False
    return True


def check_regex_where(spec: str | None) -> None:
    """Refuse a regexwhere the File Daemon could not apply (`!from!to!,...`, Python regexes;
    the same rules as filed.restore_paths.parse_regex_where, which the Director may not import)."""
    for part in (p for p in (spec or "").split(",") if p):
        pieces = part[1:].split(part[0])
        if len(pieces) < 2:
            raise JobError(
                f"invalid regexwhere {spec!r}: expression {part!r} has no replacement (use !from!to!)"
            )
        try:
            re.compile(os.fsencode(pieces[0])).sub(os.fsencode(pieces[1]).replace(b"$", b"\\"), b"")
        except re.error as exc:
            raise JobError(f"invalid regexwhere {spec!r}: expression {part!r}: {exc}") from exc


def _counts(jcr: JobControl) -> str:
    expected = jcr.restore.expected_files if jcr.restore else None
    return (
        f"restored {jcr.files} of {expected} files"
        if expected is not None
        else f"restored {jcr.files} files"
    )


def _final_status(svc: JobServices, jcr: JobControl, status: str, fd_failures: list[str]) -> str:
    expected = jcr.restore.expected_files if jcr.restore else None
    why = "; ".join(f"File Daemon: {text}" for text in fd_failures)
    if expected is not None and jcr.files < expected:
        raise JobError(f"{_counts(jcr)} the catalog selected" + (f" ({why})" if why else ""))
    if fd_failures or jcr.errors:
        raise JobError(f"{_counts(jcr)}, with {jcr.errors} error(s)" + (f" ({why})" if why else ""))
    if expected is not None and jcr.files > expected:
        svc.joblog(
            jcr, "warning", f"expected {expected} files, the File Daemon restored {jcr.files}"
        )
        return st.WARNINGS
    return status


async def _one_pass(
    svc: JobServices,
    jcr: JobControl,
    client: ClientResource,
    storage: StorageResource,
    bootstrap: list[BootstrapSpec],
    *,
    same_client: bool,
) -> dict[str, JobEnd]:
    jcr.set_wait(storage_wait(storage.name))
    sd = await connect(svc, "storage", storage)
    fd: Connection | None = None
    try:
        accepted = await request(
            sd,
            SdJobSetup(
                job_id=jcr.job_id,
                job=jcr.unique,
                job_name=jcr.name,
                client=jcr.client or "",
                fileset=jcr.fileset or "",
                job_type="R",
                level=" ",
                device=storage.device[0] if storage.device else storage.name,
                media_type=storage.media_type or "File",
                append=False,
                bootstrap=tuple(bootstrap),
            ),
            SdJobAccepted,
            "storage job setup",
        )
        jcr.set_wait(client_wait(client.name))
        fd = await connect(svc, "client", client)
        await request(
            fd,
            FdJobSetup(job_id=jcr.job_id, job=jcr.unique, job_type="R", level=" "),
            Ok,
            "client job setup",
        )
        await request(sd, SdRun(), Ok, "storage run")
        await request(
            fd,
            FdStorage(
                address=storage.address,
                port=storage.port,
                key=accepted.key,
                tls=bool(storage.tls_enable and svc.tls_enable()),
                name=sd_certificate_name(storage, sd),
            ),
            Ok,
            "client connecting to the storage daemon",
        )
        jcr.set_status(st.RUNNING)
        jcr.moving_data = True
        plan = jcr.restore
        assert plan is not None
        await request(
            fd,
            FdRestore(
                where=plan.where,
                replace=plan.replace,
                strip_prefix=plan.strip_prefix,
                add_prefix=plan.add_prefix,
                add_suffix=plan.add_suffix,
                regex_where=plan.regex_where,
                hidden_indexes=plan.hidden_indexes,
                privileged_content=plan.privileged_content,
                same_client=same_client,
            ),
            Ok,
            "start restore",
        )
        return await _converse(svc, jcr, sd, fd)
    finally:
        for conn in (fd, sd):
            if conn is not None:
                await conn.close(terminate=True)


def _pass_status(jcr: JobControl, fd_end: JobEnd, sd_end: JobEnd, status: str) -> str:
    """Cancel and a failed Storage Daemon end the job now; a File Daemon E is weighed at the end."""
    if jcr.canceled.is_set() or "A" in (fd_end.status, sd_end.status):
        raise JobCanceled()
    if sd_end.status not in st.OK:
        fd_said = (
            f"; File Daemon: {fd_end.text}" if fd_end.status not in st.OK and fd_end.text else ""
        )
        raise JobError(
            f"Storage Daemon ended the restore with status {sd_end.status}: {sd_end.text}{fd_said} "
            f"({_counts(jcr)})"
        )
    return st.WARNINGS if "W" in (fd_end.status, sd_end.status, status) else status


async def _converse(
    svc: JobServices, jcr: JobControl, sd: Connection, fd: Connection
) -> dict[str, JobEnd]:
    ends: dict[str, JobEnd] = {}

    async def from_sd() -> None:
        talk = Conversation(
            f"Director <- Storage Daemon {jcr.storage} (restore)", DIRECTOR_FROM_READING_SD
        )
        while "sd" not in ends:
            msg = await sd.recv_message()
            talk.receive(msg)  # an unexpected message is a ProtocolError naming it
            if isinstance(msg, JobEnd):
                ends["sd"] = msg
            elif isinstance(msg, JobMessage):
                svc.joblog(jcr, msg.level, f"{jcr.storage}: {msg.text}")
            elif isinstance(msg, ErrorReply):
                raise JobError(f"storage daemon: {msg.code} {msg.text}")

    async def from_fd() -> None:
        talk = Conversation(f"Director <- File Daemon {jcr.client} (restore)", DIRECTOR_FROM_FD)
        while "fd" not in ends:
            msg = await fd.recv_message()
            talk.receive(msg)
            if isinstance(msg, JobEnd):
                ends["fd"] = msg
            elif isinstance(msg, JobMessage):
                svc.joblog(jcr, msg.level, f"{jcr.client}: {msg.text}")
            elif isinstance(msg, JobProgress):
                jcr.progress.files, jcr.progress.bytes = msg.files, msg.bytes
                jcr.progress.current_file = msg.current_file.decode("utf-8", "replace")
            elif isinstance(msg, ErrorReply):
                raise JobError(f"file daemon: {msg.code} {msg.text}")

    await serve_job(jcr, [sd, fd], [from_sd(), from_fd()], "restore")
    return ends
