"""Queue throughput: N trivial Admin jobs (no payload) submitted at once pass through the Director's queue.

    .venv/bin/python bench/job_queue.py [--jobs 10000] [--clients 16] [--concurrency 20] [--dir DIR]

Real daemons on loopback with TLS and the SQLite catalog. Consoles submit `run job=noop yes` on
`--clients` connections in parallel; the clock runs from the first submission until `wait` says every
job has ended. Prints jobs/s for submission and for the whole pass, the catalog's view (every job T),
and the target: >= 500 jobs/s.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fixtures import make_test_layout
from console import launcher
from console.admin import processes, write_installation
from console.client import ConsoleClient, choose_credentials
from console.config import load_console_config

TARGET = 500.0


def configure(inst: Path, concurrency: int) -> None:
    etc = inst / "etc" / "strongroom-dir.d"
    for conf in (etc / "director").glob("*.conf"):
        conf.write_text(
            conf.read_text().replace(
                "Maximum Concurrent Jobs = 10", f"Maximum Concurrent Jobs = {concurrency}"
            )
        )
    (etc / "job" / "noop.conf").write_text(
        f"Job {{\n  Name = noop\n  Type = Admin\n  Messages = Standard\n  Maximum Concurrent Jobs = {concurrency}\n}}\n"
    )


async def submit(client: ConsoleClient, count: int) -> None:
    for _ in range(count):
        reply = await client.execute("run job=noop yes")
        if not reply.ok:
            raise SystemExit(f"run failed: {reply.text}")


async def bench(root: Path, jobs: int, clients: int, concurrency: int) -> None:
    inst = root / "queue-install"
    shutil.rmtree(inst, ignore_errors=True)
    layout = make_test_layout(inst)
    write_installation(layout)
    configure(inst, concurrency)
    procs = processes(inst)
    for p in procs:
        launcher.start(p)
    try:
        creds = choose_credentials(load_console_config(layout.console_config).config, None, None)
        consoles = [await ConsoleClient.connect(creds) for _ in range(clients)]
        try:
            share = [jobs // clients + (1 if i < jobs % clients else 0) for i in range(clients)]
            started = time.perf_counter()
            await asyncio.gather(*(submit(c, n) for c, n in zip(consoles, share, strict=True)))
            submitted = time.perf_counter() - started
            reply = await consoles[0].execute("wait timeout=600")
            total = time.perf_counter() - started
            if not reply.ok:
                raise SystemExit(f"wait failed: {reply.text[:500]}")
        finally:
            for c in consoles:
                await c.close()
    finally:
        for p in reversed(procs):
            launcher.stop(p.pid_file)
    db = sqlite3.connect(inst / "working" / "dir" / "catalog.db")
    counts = dict(
        db.execute(
            "SELECT JobStatus, COUNT(*) FROM Job WHERE Name='noop' GROUP BY JobStatus"
        ).fetchall()
    )
    db.close()
    print(
        f"jobs:                 {jobs:,} Admin no-op jobs, {clients} consoles, "
        f"Maximum Concurrent Jobs = {concurrency}"
    )
    print(f"submitted in:         {submitted:7.2f} s  ({jobs / submitted:,.0f} jobs/s)")
    print(f"all ended in:         {total:7.2f} s  ({jobs / total:,.0f} jobs/s)")
    print(f"catalog job statuses: {counts}")
    verdict = "OK" if jobs / total >= TARGET and counts.get("T") == jobs else "MISSED"
    print(f"target:               >= {TARGET:.0f} jobs/s through the queue: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="strongroom-queue-"))
    root.mkdir(parents=True, exist_ok=True)
    asyncio.run(bench(root, args.jobs, args.clients, args.concurrency))


if __name__ == "__main__":
    main()
