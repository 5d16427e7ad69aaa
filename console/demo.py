"""The quickstart's main job: back a directory up, restore it, compare, and print a summary table."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.client import ConsoleClient, choose_credentials
from console.config import load_console_config
from console.verify import compare


class DemoError(Exception):
    """A step of the quickstart run failed; the message says which and why."""


@dataclass
class Step:
    name: str
    jobid: int
    status: str
    files: int
    bytes: int
    seconds: float

    def row(self) -> str:
        rate = self.bytes / self.seconds / 1e6 if self.seconds > 0 else 0.0
        return (
            f"  {self.name:<10} {self.jobid:>6}  {self.status:^6} {self.files:>10,} "
            f"{self.bytes:>16,} {self.seconds:>9.2f} {rate:>9.1f}"
        )


async def _command(client: ConsoleClient, line: str) -> Any:
    reply = await client.execute(line)
    if not reply.ok:
        raise DemoError(f"'{line}' failed: {reply.text}")
    return reply.data


async def _job(client: ConsoleClient, name: str, line: str) -> Step:
    started = time.monotonic()
    data = await _command(client, line)
    jobid = int(data["run"]["jobid"] if "run" in data else data["restore"]["jobid"])
    reply = await client.execute(f"wait jobid={jobid}")
    seconds = time.monotonic() - started
    info = await _command(client, f"list jobid={jobid}")
    row = info["jobs"][0]
    step = Step(name, jobid, row["jobstatus"], int(row["jobfiles"]), int(row["jobbytes"]), seconds)
    if not reply.ok or step.status not in ("T", "W"):
        messages = await client.execute("messages")
        raise DemoError(f"{name} job {jobid} ended with status {step.status}\n{messages.text}")
    return step


async def run_demo(root: Path, source: Path, backup_job: str) -> int:
    config = load_console_config(root / "etc" / "srconsole.conf").config
    client = await ConsoleClient.connect(choose_credentials(config, None, None))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    where = root / "restore" / stamp
    try:
        backup = await _job(client, "backup", f"run job={backup_job} level=Full yes")
        restore = await _job(
            client, "restore", f'restore jobid={backup.jobid} where="{where}" select all done yes'
        )
    finally:
        await client.close()
    restored = where / source.relative_to(source.anchor)
    result = await asyncio.to_thread(compare, source, restored)
    print()
    print(
        f"  {'job':<10} {'JobId':>6}  {'status':^6} {'files':>10} {'bytes':>16} {'seconds':>9} {'MB/s':>9}"
    )
    print(backup.row())
    print(restore.row())
    print()
    print(f"  source:   {source}")
    print(f"  restored: {restored}")
    if result.identical:
        print(
            f"  compare:  identical ({result.files:,} entries, {result.bytes:,} bytes; content, type, mode, owner, mtime, links, xattrs)"
        )
        return 0
    print(f"  compare:  {len(result.differences)} difference(s):")
    for line in result.differences:
        print(f"    {line}")
    return 1


def backup_job_name(root: Path) -> str:
    jobs = sorted((root / "etc" / "strongroom-dir.d" / "job").glob("backup-*.conf"))
    if not jobs:
        raise DemoError(f"no backup job in {root / 'etc' / 'strongroom-dir.d' / 'job'}")
    return jobs[0].stem


def point_fileset_at(root: Path, source: Path) -> bool:
    """Make the quickstart FileSet back up `source`; True when the file changed."""
    path = root / "etc" / "strongroom-dir.d" / "fileset" / "QuickstartSet.conf"
    text = path.read_text()
    quoted = '"' + str(source).replace("\\", "\\\\").replace('"', '\\"') + '"'
    new = re.sub(r"(?m)^(\s*File = ).*$", lambda m: m.group(1) + quoted, text, count=1)
    if new != text:
        path.write_text(new)
        return True
    return False
