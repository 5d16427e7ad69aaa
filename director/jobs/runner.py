"""The job task (Bareos job_thread): run scripts, the type's payload, the end record and report."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Final

from common.aio import done_or_set
from common.scripts import run_command
from director.catalog import CatalogError
from director.jobs import status as st
from director.jobs.actions import do_actions
from director.jobs.backup import do_backup
from director.jobs.copy import do_copy
from director.jobs.copy_worker import finish_worker, run_worker
from director.jobs.errors import JobCanceled, JobError
from director.jobs.links import connect, request
from director.jobs.report import job_report
from director.jobs.restore import do_restore
from director.jobs.scripts import Script, scripts_of, substitute
from director.jobs.setup import prepare_backup
from protocol.jobs import RunScriptCommand, ScriptResult

if TYPE_CHECKING:
    from director.jobs.control import JobControl
    from director.jobs.services import JobServices

CANCEL_GRACE: Final = (
    10.0  # a canceled job may take this long to stop its daemons before it is cut off
)


async def run_job(svc: JobServices, jcr: JobControl) -> None:
    """Everything from `R` to the final status; never raises for job failures."""
    log = svc.log.bind(job_id=jcr.job_id, job=jcr.unique)
    if jcr.canceled.is_set():
        await _finish(svc, jcr, st.CANCELED, jcr.cancel_reason or "canceled before it started")
        return
    jcr.start_time = time.time()
    jcr.progress.started = jcr.start_time
    svc.writer.job(jcr.job_id, StartTime=jcr.start_time)
    jcr.set_status(st.RUNNING)
    svc.joblog(jcr, "info", f"Start {jcr.type_name} JobId {jcr.job_id}, Job={jcr.unique}")
    await _expectations(svc, jcr)
    # A Copy/Migrate worker runs its copy Job's scripts once, in the control job, as before.
    scripts = scripts_of(jcr.resource) if jcr.copy is None else []
    final = st.ERROR
    reason = ""
    try:
        final = await _until_canceled(
            jcr, _payload(svc, jcr, [s for s in scripts if s.when == "Before"])
        )
    except JobCanceled as exc:
        final, reason = st.CANCELED, str(exc)
    except JobError as exc:
        final, reason = exc.status, str(exc)
        svc.joblog(jcr, "fatal" if final == st.ERROR else "error", reason)
    except (
        CatalogError
    ) as exc:  # the catalog refused the job's rows (full disk, I/O error): say so plainly
        final, reason = st.ERROR, f"catalog: {exc}"
        svc.joblog(jcr, "fatal", reason)
    except Exception as exc:  # job boundary: log with traceback, end the job in error
        log.exception("job_crashed")
        final, reason = st.ERROR, f"internal error: {exc!r}"
        svc.joblog(jcr, "fatal", reason)
    if jcr.stopping:
        # The Director is stopping: the row stays unfinished, so the next start ends the job in
        # error and applies Reschedule On Error, exactly as after a crash.
        svc.joblog(
            jcr,
            "warning",
            "Interrupted: the Director is stopping; the job ends when it starts again",
        )
        return
    if jcr.canceled.is_set() and final not in st.FINAL - st.OK:
        final = st.CANCELED
    if final == st.CANCELED:
        reason = jcr.cancel_reason or reason or "canceled"
    ok = final in st.OK
    try:
        await _run_scripts(
            svc,
            jcr,
            [s for s in scripts if s.when in ("After", "Always")],
            ok=ok,
            exit_status=EXIT_WORDS.get(final, final),
        )
    except JobError as exc:
        svc.joblog(jcr, "error", str(exc))
        if ok:
            final = st.ERROR
    await _finish(svc, jcr, final, reason)


async def _payload(svc: JobServices, jcr: JobControl, before: list[Script]) -> str:
    await prepare_backup(svc, jcr)
    await _run_scripts(svc, jcr, before, ok=True)
    if jcr.copy is not None:
        return await run_worker(svc, jcr)
    if jcr.resource.action:
        return await do_actions(svc, jcr)
    if jcr.job_type == "B":
        return await do_backup(svc, jcr)
    if jcr.job_type == "R":
        return await do_restore(svc, jcr)
    if jcr.job_type in ("c", "g"):
        return await do_copy(svc, jcr)
    if jcr.job_type == "D":
        return st.TERMINATED
    raise JobError(f"job type {jcr.type_name} is not implemented yet")


async def _until_canceled(jcr: JobControl, payload: Coroutine[Any, Any, str]) -> str:
    """Run the job's payload. A canceled job that moves data has CANCEL_GRACE seconds to stop its
    daemons itself (the normal path); one still waiting (for a daemon, a volume, a script) or past
    the grace is cut off where it waits, which closes its connections and kills its scripts."""
    task = asyncio.ensure_future(payload)
    try:
        await done_or_set(task, jcr.canceled)
        if (
            not task.done()
            and jcr.status == st.RUNNING
            and (jcr.moving_data or jcr.copy is not None or jcr.job_type in ("c", "g"))
        ):
            # A Copy/Migrate control job waits for its workers to stop first.
            grace = CANCEL_GRACE * 4 if jcr.coordinator else CANCEL_GRACE
            await asyncio.wait({task}, timeout=grace)
        if not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
                raise JobCanceled(
                    "canceled; the job did not stop by itself and was cut off"
                ) from None
        return task.result()
    finally:
        if (
            not task.done()
        ):  # we are being cancelled ourselves: let the payload close its connections
            task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.shield(asyncio.wait({task}, timeout=5))


async def _expectations(svc: JobServices, jcr: JobControl) -> None:
    """Percent and ETA come from the previous comparable job (same Job, client, fileset, level)."""
    if jcr.job_type != "B" or jcr.copy is not None:
        return
    try:
        last = await svc.db.last_job(jcr.name, jcr.client_id, jcr.fileset_id, [jcr.level])
    except Exception:  # the estimate is a nicety; never fail a job over it
        svc.log.exception("progress_estimate_failed", job_id=jcr.job_id)
        return
    if last is not None:
        jcr.progress.expected_bytes = int(last.read_bytes or last.bytes)
        jcr.progress.expected_files = int(last.files)


EXIT_WORDS = {
    st.TERMINATED: "OK",
    st.WARNINGS: "OK -- with warnings",
    st.ERROR: "Error",
    st.FATAL: "Fatal Error",
    st.CANCELED: "Canceled",
    st.DIFFERENCES: "Differences",
    st.INCOMPLETE: "Incomplete",
}


async def _run_scripts(
    svc: JobServices, jcr: JobControl, scripts: list[Script], ok: bool, exit_status: str = ""
) -> None:
    for script in scripts:
        if script.when != "Always" and (
            (ok and not script.on_success) or (not ok and not script.on_failure)
        ):
            continue
        command = substitute(script.command, jcr, svc.name, exit_status)
        if script.on_client:
            svc.joblog(
                jcr, "info", f'{script.when}Job: run command "{command}" on client {jcr.client}'
            )
            code, output = await _client_script(svc, jcr, command)
        else:
            svc.joblog(jcr, "info", f'{script.when}Job: run command "{command}"')
            code, output = await run_command(command)
        for line in output.splitlines()[-20:]:
            svc.joblog(jcr, "info", f"{script.when}Job: {line}")
        if code != 0:
            text = f'{script.when}Job returned non-zero status={code}. Command "{command}"'
            if script.fail_job_on_error and script.when == "Before":
                raise JobError(text)
            svc.joblog(jcr, "error", text)


async def _finish(svc: JobServices, jcr: JobControl, final: str, reason: str) -> None:
    jcr.end_time = time.time()
    if final not in st.OK:  # a failed or canceled job keeps the counters it reached
        jcr.files = jcr.files or jcr.progress.files
        jcr.bytes = jcr.bytes or jcr.progress.bytes
    if jcr.copy is not None:
        await finish_worker(svc, jcr, final, reason)
        svc.joblog(jcr, "info", job_report(svc, jcr, reason))
        return
    await svc.transitions.end(
        jcr,
        final,
        EndTime=jcr.end_time,
        RealEndTime=jcr.end_time,
        JobFiles=jcr.files,
        JobBytes=jcr.bytes,
        ReadBytes=jcr.read_bytes,
        JobErrors=jcr.errors,
        Comment=reason[:250] if reason else None,
    )
    svc.joblog(jcr, "info", job_report(svc, jcr, reason))


async def _client_script(svc: JobServices, jcr: JobControl, command: str) -> tuple[int, str]:
    """Run a RunScript on the job's File Daemon (Runs On Client = yes, the Bareos default)."""
    if jcr.client is None:
        raise JobError("a client run script needs a Client")
    conn = await connect(svc, "client", jcr.settings.clients[jcr.client])
    try:
        result = await request(
            conn, RunScriptCommand(command=command), ScriptResult, "client run script", timeout=3700
        )
    finally:
        await conn.close(terminate=True)
    return result.exit_status, result.output
