"""Run a shell command for a job script, with a time limit and its output captured."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from typing import Final

SCRIPT_TIMEOUT: Final = 3600.0


async def run_command(
    command: str, timeout: float = SCRIPT_TIMEOUT, env: Mapping[str, str] | None = None
) -> tuple[int, str]:
    """Run one shell command; return its exit status and combined output (truncated).

    `env` adds variables to the daemon's environment. The command runs in its own process group,
    and a timeout kills the whole group: a child of the shell holding the output pipe would
    otherwise keep this call waiting long past the limit.
    """
    proc = await asyncio.create_subprocess_shell(
        command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
        start_new_session=True,
        env=None if env is None else {**os.environ, **env},
    )
    try:
        async with asyncio.timeout(timeout):
            output, _ = await proc.communicate()
    except TimeoutError:
        _kill_group(proc.pid)
        await proc.wait()
        return -1, f"timed out after {timeout:g} s"
    except BaseException:  # cancelled (job canceled, daemon stopping): leave nothing running
        _kill_group(proc.pid)
        raise
    return proc.returncode or 0, output.decode(errors="replace")[-4000:]


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
