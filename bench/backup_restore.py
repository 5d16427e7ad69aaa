"""Backup/restore benchmark: Strongroom's real daemons side by side with tar on the same disk.

    .venv/bin/python bench/backup_restore.py [--dir /var/tmp/strongroom-bench] [--scale 1.0]

Generates (once, deterministically) ≈2 GiB of large files, half compressible and half random, and a
tree of ≈50,000 small files; then prints, in one run: full backup MB/s and files/s, the no-change
Incremental of the small-file tree in seconds, restore MB/s, the same operations with `tar -cf` /
`tar -xf`, the ratios against the targets, and each daemon's peak RSS. Both sides read from the page
cache after the first run; neither compresses. Every measurement starts after a `sync`, and tar's
figures include making its output durable (`sync`), as a Storage Daemon makes a volume durable
before it confirms a backup. The restore side is not fsynced by either. Free memory is held by a
tmpfs ballast for the whole run (`take_free_memory`: on this VM, memory left free is handed back to
the host and costs ~3 us a page to touch again, which swung both tar and the daemons by 2x).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fixtures import make_test_layout
from console import launcher
from console.admin import processes, write_installation
from console.client import ConsoleClient, choose_credentials
from console.config import load_console_config

MIB = 1024 * 1024
LARGE_FILES = 8
LARGE_SIZE = 256 * MIB
SMALL_FILES = 50_000
SMALL_DIRS = 500


def generate(data: Path, scale: float) -> tuple[int, int]:
    """Create the data set if missing; returns (large bytes, small file count)."""
    marker = data / f".complete-{scale}"
    large, small = data / "large", data / "small"
    size = int(LARGE_SIZE * scale)
    count = int(SMALL_FILES * scale)
    if marker.exists():
        return LARGE_FILES * size, count
    shutil.rmtree(data, ignore_errors=True)
    large.mkdir(parents=True)
    rng = random.Random(20261124)
    text = b"".join(
        b"%08d the quick brown fox jumps over the lazy dog\n" % i for i in range(20_000)
    )
    for n in range(LARGE_FILES):
        with (large / f"file-{n:02d}.bin").open("wb") as f:
            written = 0
            while written < size:
                chunk = min(16 * MIB, size - written)
                f.write(
                    rng.randbytes(chunk) if n % 2 else (text * (chunk // len(text) + 1))[:chunk]
                )
                written += chunk
    for n in range(count):
        d = small / f"d{n % SMALL_DIRS:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{n:05d}.txt").write_bytes(rng.randbytes(rng.randint(512, 8192)))
    marker.touch()
    return LARGE_FILES * size, count


@dataclass
class Figure:
    what: str
    seconds: float
    amount: float
    unit: str

    @property
    def rate(self) -> float:
        return self.amount / self.seconds if self.seconds > 0 else 0.0


async def _job(client: ConsoleClient, line: str) -> tuple[float, dict[str, object]]:
    _settle()
    started = time.perf_counter()
    reply = await client.execute(line)
    if not reply.ok:
        raise SystemExit(f"{line!r} failed: {reply.text}")
    key = "run" if "run" in reply.data else "restore"
    jobid = reply.data[key]["jobid"]
    await client.execute(f"wait jobid={jobid}")
    elapsed = time.perf_counter() - started
    row = (await client.execute(f"list jobid={jobid}")).data["jobs"][0]
    if row["jobstatus"] not in ("T", "W"):
        msgs = await client.execute("messages")
        raise SystemExit(f"{line!r} ended {row['jobstatus']}\n{msgs.text}")
    return elapsed, row


def _settle() -> None:
    """Start every measurement with no dirty pages left over from the one before."""
    subprocess.run(["sync"], check=True)


def _timed(cmd: list[str], durable: Path | None = None) -> float:
    """Time a command; with `durable`, include making that file (or tree) reach the disk, as a
    Storage Daemon does before it confirms a backup and a File Daemon's restore is written."""
    _settle()
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    if durable is not None:
        subprocess.run(["sync", "-f", str(durable)] if durable.is_file() else ["sync"], check=True)
    return time.perf_counter() - started


BALLAST = Path("/dev/shm/strongroom-bench-ballast")
KEEP_FREE = 512 * MIB


def take_free_memory(path: Path) -> None:
    """Fill a tmpfs file with all free memory but KEEP_FREE, for the whole benchmark.

    This VM returns memory that stays free for ~2 s to its host (virtio-balloon free page
    reporting), and a page touched again after that costs ~3 us (touching 8.5 GB of it took 24 s of
    system time). A copy writes 2 GiB of new page cache: from free memory it cost the writing SD
    2-3 s of system time in some runs and nothing in others (tar and the backups alike), depending on how long the pages had
    been free, which decided the comparison more than the Storage Daemons did. With free memory
    taken, new page cache comes from reclaiming old page cache, pages that never sat free: the
    steady state of a long-running server, and the same for every job and for `cp`.

    With STRONGROOM_BENCH_BALLAST=no in the environment, nothing is taken (every bench that
    holds a ballast goes through here): for a run whose figures do not count, such as the
    smoke tests of tests/system/test_bench_smoke.py on a shared machine.
    """
    if ballast_off():
        return
    # Never more than the tmpfs can hold (a small /dev/shm ends the ballast early, no error); a
    # killed run leaves the file behind, and the next run overwrites it.
    size = min(_meminfo("MemFree") - KEEP_FREE, shutil.disk_usage(path.parent).free - KEEP_FREE)
    chunk = bytes(64 * MIB)
    with path.open("wb") as f:
        for _ in range(max(0, size) // len(chunk)):
            try:
                f.write(chunk)
            except OSError:  # ENOSPC
                break


def ballast_off() -> bool:
    """Whether STRONGROOM_BENCH_BALLAST=no asks for no ballast (`take_free_memory`)."""
    return os.environ.get("STRONGROOM_BENCH_BALLAST", "").lower() == "no"


def give_back_memory(path: Path) -> None:
    """Remove the ballast `take_free_memory` made; with no ballast asked for, leave `path` alone:
    it may be another bench's, running meanwhile."""
    if not ballast_off():
        path.unlink(missing_ok=True)


def _meminfo(field: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0]) * 1024
    return 0


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


async def bench(root: Path, scale: float) -> None:
    data = root / "data"
    print(f"generating data in {data} (scale {scale}) ...", flush=True)
    large_bytes, small_count = generate(data, scale)
    if BALLAST.parent.is_dir():
        take_free_memory(BALLAST)
    try:
        figures, rss = await _measure(root, data, large_bytes, small_count)
    finally:
        give_back_memory(BALLAST)
    print()
    print(f"{'measurement':48} {'seconds':>9} {'rate':>14}")
    for f in figures:
        rate = f"{f.rate:,.1f} {f.unit}" if f.unit != "s" else "-"
        print(f"{f.what:48} {f.seconds:9.2f} {rate:>14}")
    by = {f.what: f for f in figures}
    backup_ratio = by["Strongroom full backup, large files"].rate / by["tar -cf, large files"].rate
    restore_ratio = by["Strongroom restore, large files"].rate / by["tar -xf, large files"].rate
    incr = by["Strongroom no-change Incremental, small files"].seconds
    print()
    print(
        f"full backup vs tar -cf:   {backup_ratio:6.1%}  (target >= 50%)  {'ok' if backup_ratio >= 0.5 else 'MISSED'}"
    )
    print(
        f"restore vs tar -xf:       {restore_ratio:6.1%}  (target >= 50%)  {'ok' if restore_ratio >= 0.5 else 'MISSED'}"
    )
    print(
        f"no-change Incremental:    {incr:6.2f} s for {small_count:,} files (target < 5 s)  {'ok' if incr < 5 else 'MISSED'}"
    )
    for prog, value in rss.items():
        target = (
            "  (target < 150 MB)" + ("  ok" if value < 150 * MIB else "  MISSED")
            if prog == "strongroom-fd"
            else ""
        )
        print(f"peak RSS {prog:15} {value / MIB:8.1f} MB{target}")


async def _measure(
    root: Path, data: Path, large_bytes: int, small_count: int
) -> tuple[list[Figure], dict[str, int]]:
    """The Strongroom jobs with real daemons, then tar on the same data: figures and peak RSS."""
    inst = root / "install"
    shutil.rmtree(inst, ignore_errors=True)
    layout = make_test_layout(inst)
    write_installation(layout)
    etc = inst / "etc" / "strongroom-dir.d"
    for name, path in (("large", data / "large"), ("small", data / "small")):
        (etc / "fileset" / f"bench-{name}.conf").write_text(
            f"FileSet {{\n  Name = bench-{name}\n  Include {{\n    Options {{\n      Signature = XXH128\n    }}\n"
            f'    File = "{path}"\n  }}\n}}\n'
        )
        (etc / "job" / f"bench-{name}.conf").write_text(
            f"Job {{\n  Name = bench-{name}\n  JobDefs = DefaultJob\n  FileSet = bench-{name}\n  Accurate = yes\n}}\n"
        )
    procs = processes(inst)
    pids = {p.prog: launcher.start(p) for p in procs}
    figures: list[Figure] = []
    try:
        loaded = load_console_config(layout.console_config)
        client = await ConsoleClient.connect(choose_credentials(loaded.config, None, None))
        try:
            seconds, row = await _job(client, "run job=bench-large level=Full yes")
            figures.append(
                Figure("Strongroom full backup, large files", seconds, large_bytes / MIB, "MB/s")
            )
            seconds, row = await _job(client, "run job=bench-small level=Full yes")
            figures.append(
                Figure(
                    "Strongroom full backup, small files",
                    seconds,
                    int(str(row["jobfiles"])),
                    "files/s",
                )
            )
            seconds, _row = await _job(client, "run job=bench-small level=Incremental yes")
            figures.append(Figure("Strongroom no-change Incremental, small files", seconds, 0, "s"))
            where = root / "restore"
            shutil.rmtree(where, ignore_errors=True)
            seconds, _row = await _job(
                client,
                f'restore client={layout.client} fileset=bench-large where="{where}" all yes',
            )
            figures.append(
                Figure("Strongroom restore, large files", seconds, large_bytes / MIB, "MB/s")
            )
        finally:
            await client.close()
        rss = {prog: _peak_rss(pid) for prog, pid in pids.items()}
    finally:
        for p in reversed(procs):
            launcher.stop(p.pid_file)
    tar_dir = root / "tar"
    shutil.rmtree(tar_dir, ignore_errors=True)
    tar_dir.mkdir()
    tar_c = _timed(
        ["tar", "-cf", str(tar_dir / "large.tar"), "-C", str(data), "large"], tar_dir / "large.tar"
    )
    figures.append(Figure("tar -cf, large files", tar_c, large_bytes / MIB, "MB/s"))
    tar_small = _timed(
        ["tar", "-cf", str(tar_dir / "small.tar"), "-C", str(data), "small"], tar_dir / "small.tar"
    )
    figures.append(Figure("tar -cf, small files", tar_small, small_count, "files/s"))
    (tar_dir / "x").mkdir()
    tar_x = _timed(["tar", "-xf", str(tar_dir / "large.tar"), "-C", str(tar_dir / "x")])
    figures.append(Figure("tar -xf, large files", tar_x, large_bytes / MIB, "MB/s"))
    return figures, rss


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/strongroom-bench"))
    parser.add_argument(
        "--scale", type=float, default=1.0, help="fraction of the full data set (for a quick run)"
    )
    args = parser.parse_args()
    asyncio.run(bench(args.dir, args.scale))


if __name__ == "__main__":
    main()
