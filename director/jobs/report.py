"""The end-of-job report an operator reads in `messages` and the job log (Bareos layout)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from common.version import VERSION
from director.jobs import status as st

if TYPE_CHECKING:
    from director.jobs.control import JobControl
    from director.jobs.services import JobServices

_TERMINATION = {
    st.TERMINATED: "{kind} OK",
    st.WARNINGS: "{kind} OK -- with warnings",
    st.CANCELED: "{kind} Canceled",
    st.ERROR: "*** {kind} Error ***",
    st.FATAL: "*** {kind} Error ***",
    st.INCOMPLETE: "*** {kind} Incomplete ***",
}


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else time.strftime("%d-%b-%Y %H:%M:%S", time.localtime(epoch))


def job_report(svc: JobServices, jcr: JobControl, reason: str) -> str:
    elapsed = (jcr.end_time or time.time()) - (jcr.start_time or jcr.sched_time)
    rate = jcr.bytes / elapsed / 1000 if elapsed > 0 else 0.0
    kind = jcr.type_name
    lines = [
        f"{svc.name} JobId {jcr.job_id}: {kind} report",
        f"  Build:                  Strongroom {VERSION}",
        f"  JobId:                  {jcr.job_id}",
        f"  Job:                    {jcr.unique}",
    ]
    if jcr.job_type == "B":
        lines.append(f"  Backup Level:           {jcr.level_name}{jcr.backup.level_note}")
    lines += [
        f"  Client:                 {jcr.client or '-'}",
        f"  FileSet:                {jcr.fileset or '-'}",
        f"  Pool:                   {jcr.pool or '-'}",
        f"  Storage:                {jcr.storage or '-'}",
        f"  Scheduled time:         {_when(jcr.sched_time)}",
        f"  Start time:             {_when(jcr.start_time)}",
        f"  End time:               {_when(jcr.end_time)}",
        f"  Elapsed time:           {elapsed:.1f} s",
        f"  Priority:               {jcr.priority}",
        f"  Files:                  {jcr.files:,}",
        f"  Bytes:                  {jcr.bytes:,}",
        f"  Rate:                   {rate:.1f} KB/s",
        f"  Errors:                 {jcr.errors}",
        f"  Warnings:               {jcr.warnings}",
        f"  Volume name(s):         {'|'.join(jcr.volumes) or '-'}",
        f"  Termination:            {_TERMINATION.get(jcr.status, '{kind} ' + jcr.status).format(kind=kind)}",
    ]
    if reason:
        lines.append(f"  Reason:                 {reason}")
    return "\n".join(lines)
