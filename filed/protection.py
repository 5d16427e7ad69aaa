"""What a File Daemon refuses whatever its Director asks: scripts outside its allow-lists, restores
to a read-only client (Bareos `Allowed Script Dir`, `Allowed Job Command`; `Allow Restore = no`)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from filed.config import FileDaemonConfig

# With Allowed Script Dir set, a command is a program and its arguments, nothing a shell interprets.
SHELL_SYNTAX: Final = frozenset(";&|<>()$`\\\"'*?[]{}~!#\n\r\t")


def script_refusal(
    command: str,
    allowed_dirs: Sequence[Path],
    allowed_commands: Sequence[str],
    resource: str = "this client's",
) -> str | None:
    """Why a client-side script may not run here, or None. With neither list set, anything runs.
    `resource` names whose lists these are in the reason ("this client's", "Director d's")."""
    if allowed_commands and command in allowed_commands:
        return None
    if not allowed_dirs:
        return (
            None
            if not allowed_commands
            else f"command {command!r} is not in {resource} Allowed Job Command"
        )
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


def director_script_refusal(
    config: FileDaemonConfig | None, director: str, command: str
) -> str | None:
    """Why a client script sent by the Director named `director` may not run here, or None.

    The Client resource's lists apply to every Director; the Director resource's own lists
    restrict that Director further: a script runs only when both admit it (the stricter wins).
    Without a configuration (a File Daemon built in a test) anything runs.
    """
    if config is None:
        return None
    client = config.client
    refusal = script_refusal(command, client.allowed_script_dir, client.allowed_job_command)
    if refusal is not None:
        return refusal
    resource = config.directors.get(director)
    if resource is None:
        return f"Director {director!r} is not configured on this client"
    return script_refusal(
        command,
        resource.allowed_script_dir,
        resource.allowed_job_command,
        resource=f"Director {director}'s",
    )


RESTORE_REFUSED: Final = (
    "restores are disabled on this client (Allow Restore = no): it is read-only"
)
