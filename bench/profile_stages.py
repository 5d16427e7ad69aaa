"""Where the time goes: each job of bench/backup_restore.py alone, CPU per daemon, py-spy per stage.

    .venv/bin/python bench/profile_stages.py [--dir DIR] [--scale 0.25] [--pyspy OUT] [--top 25]
        [--small-tree DIR]

Uses bench/backup_restore.py's data set and installation (real daemons, TLS on, XXH128 signatures,
SQLite catalog) and runs its jobs one at a time: full of the large files, full of the small files,
no-change Incremental, restore of the large files, restore of the small files. For each it prints
the wall time and the CPU seconds (user + system) of every daemon, then each daemon's user and
system seconds apart: system time (creating files, the page cache) swings by several times from run
to run on this VM, user time (our Python) much less. With `--pyspy OUT`, py-spy
samples every daemon during each job (50 Hz, only threads that are running) and writes collapsed
stacks to `OUT/<stage>-<daemon>.txt`, then prints the functions with the most own samples and the
most samples below them: the per-daemon, per-stage profile of docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.backup_restore import BALLAST, _job, generate, give_back_memory, take_free_memory
from bench.fixtures import make_test_layout
from console import launcher
from console.admin import processes, write_installation
from console.client import ConsoleClient, choose_credentials
from console.config import load_console_config

PY_SPY = Path(sys.executable).parent / "py-spy"
_LINE = re.compile(r" \([^()]*:\d+\)$")


def cpu_times(pid: int) -> tuple[float, float]:
    """CPU seconds (user, system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    return sum(cpu_times(pid))


def _frame(raw: str) -> str:
    """`func (path/to/file.py:123)` -> `func (file.py)`: one entry per function, not per line."""
    name, _, where = raw.partition(" (")
    file = where.rsplit(":", 1)[0].rsplit("/", 1)[-1]
    return f"{name} ({file})" if where else name


def summarize(path: Path, top: int) -> list[str]:
    """The functions with the most own samples, and the most samples at or below them."""
    own: collections.Counter[str] = collections.Counter()
    below: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";") if not f.startswith(("thread (", "process "))]
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            below[f] += n
    out = [f"    {total} samples"]
    out += [f"    own   {n / total:6.1%}  {f}" for f, n in own.most_common(top)] if total else []
    out += [f"    total {n / total:6.1%}  {f}" for f, n in below.most_common(top)] if total else []
    return out


async def profile(
    root: Path, scale: float, spy_dir: Path | None, top: int, small: Path | None = None
) -> None:
    data = root / "data"
    generate(data, scale)
    trees = {"large": data / "large", "small": small or data / "small"}
    inst = root / "install"
    shutil.rmtree(inst, ignore_errors=True)
    layout = make_test_layout(inst)
    write_installation(layout)
    etc = inst / "etc" / "strongroom-dir.d"
    for name in ("large", "small"):
        (etc / "fileset" / f"bench-{name}.conf").write_text(
            f"FileSet {{\n  Name = bench-{name}\n  Include {{\n    Options {{\n      Signature = XXH128\n    }}\n"
            f'    File = "{trees[name]}"\n  }}\n}}\n'
        )
        (etc / "job" / f"bench-{name}.conf").write_text(
            f"Job {{\n  Name = bench-{name}\n  JobDefs = DefaultJob\n  FileSet = bench-{name}\n  Accurate = yes\n}}\n"
        )
    stages = [
        ("full-large", "run job=bench-large level=Full yes"),
        ("full-small", "run job=bench-small level=Full yes"),
        ("incr-small", "run job=bench-small level=Incremental yes"),
        (
            "restore-large",
            f'restore client={layout.client} fileset=bench-large where="{root / "restore-large"}" all yes',
        ),
        (
            "restore-small",
            f'restore client={layout.client} fileset=bench-small where="{root / "restore-small"}" all yes',
        ),
    ]
    if spy_dir is not None:
        spy_dir.mkdir(parents=True, exist_ok=True)
    if BALLAST.parent.is_dir():
        take_free_memory(BALLAST)
    procs = processes(inst)
    pids = {p.prog: launcher.start(p) for p in procs}
    report: list[str] = []
    try:
        client = await ConsoleClient.connect(
            choose_credentials(load_console_config(layout.console_config).config, None, None)
        )
        try:
            for stage, line in stages:
                shutil.rmtree(root / stage, ignore_errors=True)
                os.sync()  # the removal's writes (and discards) are not charged to the job
                spies: dict[str, subprocess.Popen[bytes]] = {}
                if spy_dir is not None:
                    for prog, pid in pids.items():
                        spies[prog] = subprocess.Popen(
                            [
                                str(PY_SPY),
                                "record",
                                "--nonblocking",
                                "--threads",
                                "-r",
                                "50",
                                "-f",
                                "raw",
                                "-p",
                                str(pid),
                                "-o",
                                str(spy_dir / f"{stage}-{prog}.txt"),
                            ],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                        )
                    time.sleep(1.0)  # py-spy attaches
                before = {prog: cpu_times(pid) for prog, pid in pids.items()}
                seconds, row = await _job(client, line)
                after = {prog: cpu_times(pid) for prog, pid in pids.items()}
                split = {
                    prog: (after[prog][0] - before[prog][0], after[prog][1] - before[prog][1])
                    for prog in pids
                }
                used = {prog: user + system for prog, (user, system) in split.items()}
                for spy in spies.values():
                    spy.send_signal(signal.SIGINT)
                for spy in spies.values():
                    spy.wait(timeout=60)
                cpus = "  ".join(
                    f"{prog.removeprefix('strongroom-')} {s:6.2f}" for prog, s in used.items()
                )
                users = "  ".join(
                    f"{prog.removeprefix('strongroom-')} {split[prog][0]:5.2f}/{split[prog][1]:5.2f}"
                    for prog in pids
                )
                line_out = (
                    f"{stage:14} {seconds:7.2f} s  files {row.get('jobfiles')!s:>7}  "
                    f"CPU s: {cpus}  all {sum(used.values()):6.2f}  user/sys: {users}"
                )
                print(line_out, flush=True)
                report.append(line_out)
                if spy_dir is not None:
                    for prog in pids:
                        path = spy_dir / f"{stage}-{prog}.txt"
                        if path.exists():
                            report.append(f"  {stage} {prog}")
                            report.extend(summarize(path, top))
        finally:
            await client.close()
    finally:
        for p in reversed(procs):
            launcher.stop(p.pid_file)
        give_back_memory(BALLAST)
    print("\n".join(report))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/strongroom-bench"))
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument(
        "--pyspy", type=Path, default=None, help="directory for py-spy's collapsed stacks"
    )
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--small-tree",
        type=Path,
        default=None,
        help="back up and restore this tree as the small files (e.g. the peer bench's Linux tree)",
    )
    args = parser.parse_args()
    asyncio.run(profile(args.dir, args.scale, args.pyspy, args.top, args.small_tree))


if __name__ == "__main__":
    main()
