"""Run a shell command for a job script, with a time limit and its output captured."""

from __future__ import annotations

import asyncio
from typing import Final

SCRIPT_TIMEOUT: Final = 3600.0


async def run_command(command: str, timeout: float = SCRIPT_TIMEOUT) -> tuple[int, str]:
    """Run one shell command; return its exit status and combined output (truncated)."""
    proc = await asyncio.create_subprocess_shell(
        command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(timeout):
            output, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -1, f"timed out after {timeout:g} s"
    return proc.returncode or 0, output.decode(errors="replace")[-4000:]
