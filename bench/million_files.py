"""A million small files: backup, no-change Incremental, restores, browsing, memory.

    .venv/bin/python bench/million_files.py [--dir DIR] [--files 1000000] [--dirs 1000] [--skip-jobs]
        [--no-full-restore] [--no-ballast]

Generates (once per size) `--files` tiny files (8 bytes each) in `--dirs` directories, starts the
real daemons (TLS on, XXH128 signatures, SQLite catalog, Accurate = yes) and prints: the Full's
seconds and files/s, the no-change Incremental's seconds, the restore of one directory and (unless
--no-full-restore) of the whole tree, counting the files that came back, the same
selection made in the catalog (restore.chosen.choose, in a child process, with its peak RSS), browsing
one directory of the Full through the catalog's path/parent index (Catalog.browse_directory, the
median of 20 calls on a read-only connection), each daemon's peak RSS (VmHWM) over the run and the
CPU seconds each daemon spent per job. Before the jobs, the catalog's attribute inserts alone:
`--files` synthetic attribute records through the Director's AttributeSink into a fresh catalog.

The inserts are printed per wall second and per CPU second of the process (on a loaded machine
the second is the steadier figure). Run it at --files 100000 and at the full 1,000,000: the targets (issue #14) are every daemon's
peak RSS under 150 MB and flat between the two, inserts >= 50,000 files/s, browsing < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.backup_restore import BALLAST, _job, _peak_rss, give_back_memory, take_free_memory
from bench.fixtures import make_test_layout
from bench.profile_stages import cpu_seconds
from console import launcher
from console.admin import processes, write_installation
from console.client import ConsoleClient, choose_credentials
from console.config import load_console_config
from console.templates import Layout
from director.catalog.sqlite import Catalog
from director.jobs.attributes import AttributeSink
from director.restore.bootstrap import bootstrap_from_ranges
from director.restore.chosen import choose
from director.restore.selection import Selection
from protocol import codec
from protocol.attributes import FileAttributes, FileType, encode_attributes
from protocol.records import Stream

MIB = 1024 * 1024


def generate(data: Path, files: int, dirs: int) -> Path:
    """`files` files of 8 bytes in `dirs` directories under data/tree-<files>; made once."""
    tree = data / f"tree-{files}"
    marker = data / f".complete-{files}-{dirs}"
    if marker.exists():
        return tree
    shutil.rmtree(tree, ignore_errors=True)
    per_dir = -(-files // dirs)
    made = 0
    for d in range(dirs):
        folder = tree / f"d{d:04d}"
        folder.mkdir(parents=True)
        for n in range(min(per_dir, files - made)):
            fd = os.open(folder / f"f{n:05d}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, b"%07d\n" % made)
            os.close(fd)
            made += 1
    marker.touch()
    return tree


async def catalog_inserts(files: int) -> tuple[float, float]:
    """Files per second through AttributeSink into a fresh SQLite catalog (attribute + digest
    records, 1,000 files per directory), the Director's part of a backup alone."""
    rows = []
    for n in range(files):
        attrs = FileAttributes(
            path=b"/srv/data/d%04d/f%05d" % (n // 1000, n % 1000),
            type=FileType.REGULAR,
            mode=0o100644,
            uid=1000,
            gid=1000,
            size=8,
            atime_ns=n,
            mtime_ns=n,
            ctime_ns=n,
            digest_algorithm="XXH128",
        )
        rows.append(
            (n + 1, encode_attributes(attrs), codec.pack(("XXH128", n.to_bytes(16, "big"))))
        )
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog(Path(tmp) / "catalog.db")
        catalog.migrate()
        with catalog._tx("add the bench's Job row") as db:  # File rows name a Job row
            db.execute(
                "INSERT INTO Job (JobId, Job, Name, Type, Level, JobStatus) VALUES (1, 'b', 'b', 'B', 'F', 'R')"
            )

        async def insert(job_id: int, batch: object) -> None:
            assert isinstance(batch, list)
            catalog.insert_files(job_id, batch)

        sink = AttributeSink(insert, 1)
        started, cpu = time.perf_counter(), time.process_time()
        for index, attrs_payload, digest_payload in rows:
            sink.add(index, Stream.ATTRIBUTES, attrs_payload)
            sink.add(index, Stream.DIGEST, digest_payload)
            await sink.maybe_flush()
        await sink.flush()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        catalog.close()
    return files / elapsed, files / cpu


def _install(root: Path, tree: Path) -> tuple[Layout, Path]:
    inst = root / "install"
    shutil.rmtree(inst, ignore_errors=True)
    layout = make_test_layout(inst)
    write_installation(layout)
    etc = inst / "etc" / "strongroom-dir.d"
    (etc / "fileset" / "bench-million.conf").write_text(
        f"FileSet {{\n  Name = bench-million\n  Include {{\n    Options {{\n      Signature = XXH128\n    }}\n"
        f'    File = "{tree}"\n  }}\n}}\n'
    )
    (etc / "job" / "bench-million.conf").write_text(
        "Job {\n  Name = bench-million\n  JobDefs = DefaultJob\n  FileSet = bench-million\n  Accurate = yes\n}\n"
    )
    return layout, inst


def select_in_catalog(db: Path, job_ids: list[int], directory: bytes) -> str:
    """The restore of one directory selected in the catalog (restore.chosen.choose and
    bootstrap_from_ranges, what the Director's restore command is to call) in a child process:
    its seconds, what it chose, and the child's peak RSS after the imports and at the end."""
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--select-only",
            str(db),
            ",".join(map(str, job_ids)),
            os.fsdecode(directory),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return child.stdout.strip()


def _hwm_mb() -> float:
    return _peak_rss(os.getpid()) / MIB


def select_only(db: Path, job_ids: list[int], directory: bytes) -> None:
    catalog = Catalog(db)
    try:
        after_imports = _hwm_mb()
        started, cpu = time.perf_counter(), time.process_time()
        chosen = choose(catalog, job_ids, Selection(directories=(directory,)))
        specs = bootstrap_from_ranges(chosen.ranges, catalog.list_jobmedia(job_ids), job_ids)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        walk_started = time.perf_counter()
        walked = sum(len(batch) for batch in catalog.walk_chain(job_ids))
        walk_seconds = time.perf_counter() - walk_started
    finally:
        catalog.close()
    ranges = sum(len(s.file_indexes) for s in specs)
    print(
        f"restore of one directory selected in the catalog: {seconds * 1000:.0f} ms "
        f"({cpu:.2f} CPU s), {chosen.files:,} files in {ranges} range(s) on {len(specs)} "
        f"volume session(s); the whole latest state walked: {walked:,} rows in "
        f"{walk_seconds:.1f} s; peak RSS of that process {after_imports:.0f} MB after the "
        f"imports, {_hwm_mb():.0f} MB at the end"
    )


def browse_ms(db: Path, job_id: int, directory: bytes, rounds: int = 20) -> tuple[float, int]:
    catalog = Catalog(db)
    try:
        times = []
        entries = 0
        for _ in range(rounds):
            started = time.perf_counter()
            entries = len(catalog.browse_directory([job_id], directory))
            times.append(time.perf_counter() - started)
    finally:
        catalog.close()
    return statistics.median(times) * 1000, entries


async def bench(
    root: Path, files: int, dirs: int, *, skip_jobs: bool, ballast: bool, full_restore: bool
) -> None:
    wall, cpu = await catalog_inserts(files)
    print(
        f"catalog inserts alone: {wall:,.0f} files/s, {cpu:,.0f} files per CPU second  (target >= 50,000)",
        flush=True,
    )
    if skip_jobs:
        return
    print(
        f"generating {files:,} files in {dirs:,} directories under {root / 'data'} ...", flush=True
    )
    started = time.perf_counter()
    tree = generate(root / "data", files, dirs)
    print(f"  ready in {time.perf_counter() - started:.0f} s", flush=True)
    layout, inst = _install(root, tree)
    if ballast and BALLAST.parent.is_dir():
        take_free_memory(BALLAST)
    procs = processes(inst)
    pids = {p.prog: launcher.start(p) for p in procs}
    lines: list[str] = []
    try:
        client = await ConsoleClient.connect(
            choose_credentials(load_console_config(layout.console_config).config, None, None)
        )
        try:
            where = root / "restore"
            where_all = root / "restore-all"
            shutil.rmtree(where, ignore_errors=True)
            shutil.rmtree(where_all, ignore_errors=True)
            jobs = [
                ("Full", "run job=bench-million level=Full yes"),
                ("no-change Incremental", "run job=bench-million level=Incremental yes"),
                (
                    "restore of one directory",
                    f"restore client={layout.client} fileset=bench-million "
                    f'where="{where}" directory="{tree / "d0007"}" yes',
                ),
            ]
            if full_restore:
                jobs.append(
                    (
                        "restore of everything",
                        f"restore client={layout.client} fileset=bench-million "
                        f'where="{where_all}" all yes',
                    )
                )
            full_id = 0
            job_ids: list[int] = []  # the chain the restore reads: the Full, the Incremental
            for what, line in jobs:
                before = {prog: cpu_seconds(pid) for prog, pid in pids.items()}
                seconds, row = await _job(client, line)
                cpus = "  ".join(
                    f"{prog.removeprefix('strongroom-')} {cpu_seconds(pid) - before[prog]:.1f}"
                    for prog, pid in pids.items()
                )
                count = int(str(row["jobfiles"]))
                peaks = "  ".join(
                    f"{prog.removeprefix('strongroom-')} {_peak_rss(pid) / MIB:.0f}"
                    for prog, pid in pids.items()
                )
                lines.append(
                    f"{what:26} {seconds:8.2f} s  {count:>9,} files  {count / seconds:9,.0f} files/s  "
                    f"CPU s: {cpus}  peak RSS MB so far: {peaks}"
                )
                print(lines[-1], flush=True)
                if what == "Full":
                    full_id = int(str(row["jobid"]))
                if not what.startswith("restore"):
                    job_ids.append(int(str(row["jobid"])))
            restored = sum(1 for _ in (where / tree.relative_to("/") / "d0007").iterdir())
            lines.append(f"{'':26} restored {restored:,} files of d0007")
            if full_restore:
                copy = where_all / tree.relative_to("/")
                restored = sum(len(names) for _, _, names in os.walk(copy))
                lines.append(
                    f"{'':26} restored {restored:,} files of {files:,}"
                    f" ({'all there' if restored == files else 'MISSING FILES'})"
                )
                shutil.rmtree(where_all, ignore_errors=True)
        finally:
            await client.close()
        rss = {prog: _peak_rss(pid) for prog, pid in pids.items()}
    finally:
        for p in reversed(procs):
            launcher.stop(p.pid_file)
        if ballast:  # --no-ballast: not ours to remove
            give_back_memory(BALLAST)
    catalog_db = inst / "working" / "dir" / "catalog.db"
    lines.append(select_in_catalog(catalog_db, job_ids, bytes(tree / "d0007")))
    ms, entries = browse_ms(catalog_db, full_id, bytes(tree / "d0500"))
    lines.append(
        f"browse one directory of the Full: {ms:.1f} ms for {entries:,} entries (target < 100 ms)"
    )
    for prog, value in rss.items():
        lines.append(
            f"peak RSS {prog:15} {value / MIB:7.1f} MB  (target < 150 MB)  "
            f"{'ok' if value < 150 * MIB else 'MISSED'}"
        )
    subprocess.run(["sync"], check=True)
    print()
    print(f"{files:,} files in {dirs:,} directories")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/strongroom-million"))
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--dirs", type=int, default=1000)
    parser.add_argument("--skip-jobs", action="store_true", help="only the catalog inserts")
    parser.add_argument(
        "--no-full-restore",
        action="store_true",
        help="leave out the restore of the whole tree (the longest job)",
    )
    parser.add_argument(
        "--no-ballast",
        action="store_true",
        help="leave free memory free (a daemon that outgrows the ballast's 512 MB would meet the "
        "OOM killer)",
    )
    parser.add_argument(
        "--select-only",
        nargs=3,
        metavar=("CATALOG", "JOBIDS", "DIR"),
        help="only select DIR of JOBIDS in CATALOG in the catalog (the bench runs this itself)",
    )
    args = parser.parse_args()
    if args.select_only:
        db, ids, directory = args.select_only
        select_only(Path(db), [int(i) for i in ids.split(",")], os.fsencode(directory))
        return
    asyncio.run(
        bench(
            args.dir,
            args.files,
            args.dirs,
            skip_jobs=args.skip_jobs,
            ballast=not args.no_ballast,
            full_restore=not args.no_full_restore,
        )
    )


if __name__ == "__main__":
    main()
