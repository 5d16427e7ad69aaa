"""The job task (Bareos job_thread): run scripts, the type's payload, the end record and report."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from common.scripts import run_command
from director.jobs import status as st
from director.jobs.backup import do_backup
from director.jobs.copy import do_copy
from director.jobs.errors import JobCanceled, JobError
from director.jobs.links import connect, request
from director.jobs.report import job_report
from director.jobs.restore import do_restore
from director.jobs.scripts import Script, scripts_of, substitute
from protocol.jobs import RunScriptCommand, ScriptResult

if TYPE_CHECKING:
    from director.daemon import DirectorDaemon
    from director.jobs.control import JobControl


async def run_job(director: DirectorDaemon, jcr: JobControl) -> None:
    """Everything from `R` to the final status; never raises for job failures."""
    log = director.log.bind(job_id=jcr.job_id, job=jcr.unique)
    if jcr.canceled.is_set():
        await _finish(director, jcr, st.CANCELED, "canceled before it started")
        return
    jcr.set_status(st.RUNNING)
    jcr.start_time = time.time()
    jcr.progress.started = jcr.start_time
    await director.catalog_call("update_job", jcr.job_id, JobStatus=st.RUNNING, StartTime=jcr.start_time)
    director.joblog(jcr, "info", f"Start {jcr.type_name} JobId {jcr.job_id}, Job={jcr.unique}")
    scripts = scripts_of(jcr.resource)
    final = st.ERROR
    reason = ""
    try:
        await _run_scripts(director, jcr, [s for s in scripts if s.when == "Before"], ok=True)
        if jcr.job_type == "B":
            final = await do_backup(director, jcr)
        elif jcr.job_type == "R":
            final = await do_restore(director, jcr)
        elif jcr.job_type in ("c", "g"):
            final = await do_copy(director, jcr)
        elif jcr.job_type == "D":
            final = st.TERMINATED
        else:
            raise JobError(f"job type {jcr.type_name} is not implemented yet")
    except JobCanceled as exc:
        final, reason = st.CANCELED, str(exc)
    except JobError as exc:
        final, reason = exc.status, str(exc)
        director.joblog(jcr, "fatal" if final == st.ERROR else "error", reason)
    except Exception as exc:  # job boundary: log with traceback, end the job in error
        log.exception("job_crashed")
        final, reason = st.ERROR, f"internal error: {exc!r}"
        director.joblog(jcr, "fatal", reason)
    if jcr.canceled.is_set() and final not in st.FINAL - st.OK:
        final = st.CANCELED
    ok = final in st.OK
    try:
        await _run_scripts(director, jcr, [s for s in scripts if s.when in ("After", "Always")], ok=ok,
                           exit_status=EXIT_WORDS.get(final, final))
    except JobError as exc:
        director.joblog(jcr, "error", str(exc))
        if ok:
            final = st.ERROR
    await _finish(director, jcr, final, reason)


EXIT_WORDS = {st.TERMINATED: "OK", st.WARNINGS: "OK -- with warnings", st.ERROR: "Error", st.FATAL: "Fatal Error",
              st.CANCELED: "Canceled", st.DIFFERENCES: "Differences", st.INCOMPLETE: "Incomplete"}


async def _run_scripts(director: DirectorDaemon, jcr: JobControl, scripts: list[Script], ok: bool,
                       exit_status: str = "") -> None:
    for script in scripts:
        if script.when != "Always" and ((ok and not script.on_success) or (not ok and not script.on_failure)):
            continue
        command = substitute(script.command, jcr, director.name, exit_status)
        if script.on_client:
            director.joblog(jcr, "info", f"{script.when}Job: run command \"{command}\" on client {jcr.client}")
            code, output = await _client_script(director, jcr, command)
        else:
            director.joblog(jcr, "info", f"{script.when}Job: run command \"{command}\"")
            code, output = await run_command(command)
        for line in output.splitlines()[-20:]:
            director.joblog(jcr, "info", f"{script.when}Job: {line}")
        if code != 0:
            text = f"{script.when}Job returned non-zero status={code}. Command \"{command}\""
            if script.fail_job_on_error and script.when == "Before":
                raise JobError(text)
            director.joblog(jcr, "error", text)


async def _finish(director: DirectorDaemon, jcr: JobControl, final: str, reason: str) -> None:
    jcr.status = final
    jcr.end_time = time.time()
    await director.catalog_call(
        "update_job", jcr.job_id, JobStatus=final, EndTime=jcr.end_time, RealEndTime=jcr.end_time,
        JobFiles=jcr.files, JobBytes=jcr.bytes, ReadBytes=jcr.read_bytes, JobErrors=jcr.errors,
        Comment=reason[:250] if reason else None,
    )
    director.joblog(jcr, "info", job_report(director, jcr, reason))


async def _client_script(director: DirectorDaemon, jcr: JobControl, command: str) -> tuple[int, str]:
    """Run a RunScript on the job's File Daemon (Runs On Client = yes, the Bareos default)."""
    if jcr.client is None:
        raise JobError("a client run script needs a Client")
    conn = await connect(director, "client", jcr.params["config"].clients[jcr.client])
    try:
        result = await request(conn, RunScriptCommand(command=command), ScriptResult, "client run script", timeout=3700)
    finally:
        await conn.close(terminate=True)
    return result.exit_status, result.output
