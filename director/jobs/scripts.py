"""Run Before/After job commands on the Director, with Bareos `%` substitutions."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from director.config import JobResource
    from director.jobs.control import JobControl


@dataclass(frozen=True)
class Script:
    command: str
    when: str  # Before | After | Always
    on_success: bool
    on_failure: bool
    on_client: bool
    fail_job_on_error: bool


def scripts_of(resource: JobResource) -> list[Script]:
    """Every command of a Job resource: RunScript blocks and the RunBefore/After shorthands."""
    out: list[Script] = []
    for block in resource.run_script:
        for command in block.command:
            out.append(
                Script(
                    command,
                    block.runs_when.capitalize(),
                    block.runs_on_success,
                    block.runs_on_failure,
                    block.runs_on_client,
                    block.fail_job_on_error,
                )
            )
    out += [Script(c, "Before", True, False, False, True) for c in resource.run_before_job]
    out += [Script(c, "After", True, False, False, False) for c in resource.run_after_job]
    out += [Script(c, "After", False, True, False, False) for c in resource.run_after_failed_job]
    out += [Script(c, "Before", True, False, True, True) for c in resource.client_run_before_job]
    out += [Script(c, "After", True, False, True, False) for c in resource.client_run_after_job]
    return out


def substitute(
    command: str,
    jcr: JobControl,
    director_name: str,
    exit_status: str = "",
    extra: Mapping[str, str] | None = None,
) -> str:
    """Expand %c %d %e %i %j %l %n %t %b %F %v %% as Bareos does; `extra` adds or overrides codes.

    The command runs under `sh -c`, so every substituted value is shell-quoted (`shlex.quote`): a
    value with spaces or shell syntax (a name, a volume list, a status text) is one word and runs
    nothing. A value made only of safe characters (every legal name) is left as it is, so stock
    Bareos command lines read the same. `%%` is a literal `%`.
    """
    codes = {
        "c": jcr.client or "*none*",
        "d": director_name,
        "e": exit_status or jcr.status,
        "i": str(jcr.job_id),
        "j": jcr.unique,
        "l": jcr.level_name,
        "n": jcr.name,
        "t": jcr.type_name,
        "b": str(jcr.bytes),
        "F": str(jcr.files),
        "v": ",".join(jcr.volumes),
        "s": "" if jcr.since is None else str(int(jcr.since)),
        "%": "%",
        **(extra or {}),
    }
    out: list[str] = []
    i = 0
    while i < len(command):
        ch = command[i]
        if ch == "%" and i + 1 < len(command) and command[i + 1] in codes:
            code = command[i + 1]
            out.append("%" if code == "%" else shlex.quote(codes[code]))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)
