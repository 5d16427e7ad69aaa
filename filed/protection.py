"""What a File Daemon refuses whatever its Director asks: job commands outside its Allowed Job
Command list (Bareos: `backup`, `restore`, `estimate`, `verify`, `runscript`), client scripts
outside its Allowed Script Dir, restores to a read-only client (`Allow Restore = no`)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from filed.config import FileDaemonConfig

# With Allowed Script Dir set, a command is a program and its arguments, nothing a shell interprets.
SHELL_SYNTAX: Final = frozenset(";&|<>()$`\\\"'*?[]{}~!#\n\r\t")


# The job commands `Allowed Job Command` may list (Bareos names); status and cancel are always
# allowed. A Bareos list naming `Run`, `RunBeforeJob`, `RunAfterJob` or `RunBeforeNow` allows
# client scripts as `runscript` does.
JOB_COMMANDS: Final = ("backup", "restore", "estimate", "verify", "runscript")
_SCRIPT_ALIASES: Final = frozenset(
    {"runscript", "run", "runbeforejob", "runafterjob", "runbeforenow"}
)


def job_command_refusal(
    command: str, allowed: Sequence[str], resource: str = "this client's"
) -> str | None:
    """Why the job command `command` (one of JOB_COMMANDS) is refused by an Allowed Job Command
    list, or None. An empty list allows every command (the Bareos default)."""
    if not allowed:
        return None
    names = {name.lower() for name in allowed}
    if command in names or (command == "runscript" and names & _SCRIPT_ALIASES):
        return None
    return f"the {command} command is not in {resource} Allowed Job Command ({', '.join(allowed)})"


def script_refusal(
    command: str, allowed_dirs: Sequence[Path], resource: str = "this client's"
) -> str | None:
    """Why a client-side script may not run here by an Allowed Script Dir list, or None. With no
    directory set, anything runs. `resource` names whose list it is in the reason."""
    if not allowed_dirs:
        return None
    if any(ch in SHELL_SYNTAX for ch in command):
        return (
            f"command {command!r} uses shell syntax, which {resource} Allowed Script Dir "
            "does not allow"
        )
    words = shlex.split(command)
    if not words:
        return "empty command"
    program = words[0]
    if not os.path.isabs(program):
        return f"program {program!r} is not an absolute path inside {resource} Allowed Script Dir"
    real = Path(os.path.realpath(program))
    for directory in allowed_dirs:
        root = Path(os.path.realpath(directory))
        if real.parent == root or root in real.parents:
            return None
    listed = ", ".join(str(d) for d in allowed_dirs)
    return f"program {program} is not inside {resource} Allowed Script Dir ({listed})"


def director_refusal(
    config: FileDaemonConfig | None, director: str, command: str, script: str | None = None
) -> str | None:
    """Why the Director named `director` may not run the job command `command` here (with
    `script`, the command line of a client script), or None.

    The Client resource's lists apply to every Director; the Director resource's own lists
    restrict that Director further: a command runs only when both admit it (the stricter wins).
    Without a configuration (a File Daemon built in a test) everything runs.
    """
    if config is None:
        return None
    client = config.client
    resource = config.directors.get(director)
    if resource is None:
        return f"Director {director!r} is not configured on this client"
    for lists, whose in (
        (client, "this client's"),
        (resource, f"Director {director}'s"),
    ):
        refusal = job_command_refusal(command, lists.allowed_job_command, whose)
        if refusal is None and script is not None:
            refusal = script_refusal(script, lists.allowed_script_dir, whose)
        if refusal is not None:
            return refusal
    return None


RESTORE_REFUSED: Final = (
    "restores are disabled on this client (Allow Restore = no): it is read-only"
)
