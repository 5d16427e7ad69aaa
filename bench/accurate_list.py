"""The File Daemon's accurate list at a million paths: peak RSS and CPU seconds, before and after.

    .venv/bin/python bench/accurate_list.py [--files 1000000] [--dir DIR]

Each variant runs in a fresh process that imports the File Daemon, then receives `--files`
entries the way the FD does: AccurateBatch messages of 2,000 entries decoded from their wire bytes
and stored (`new`: filed.accurate.AccurateList, its entries in a file under --dir; `dict`: the
dict of AccurateEntry plus the set of seen paths the FD kept before), then looks up every path and
marks it seen as the backup walk does (one in 1,000 is missing: new files; one in 1,000 of the
list is never seen: deleted ones) and lists the unseen ones. It prints the peak RSS (VmHWM) after
the imports and at the end, and the CPU seconds of each phase. Target (issue #14): FD peak RSS
under 150 MB at a million files.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import filed.control  # noqa: F401  # what the daemon holds before any job
from filed.accurate import AccurateEntry, AccurateList
from protocol.jobs import AccurateBatch
from protocol.messages import decode_message, encode_message

BATCH = 2000  # director/jobs/backup.py ACCURATE_BATCH


def _hwm_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _path(n: int) -> bytes:
    return b"/var/tmp/bench-data/million/tree-1000000/d%04d/f%05d" % (n // 1000, n % 1000)


def _run(variant: str, files: int, directory: Path) -> None:
    base = _hwm_mb()

    def batches() -> Iterator[tuple[bytes, float]]:
        """Each batch's wire bytes (made as the socket would deliver them, one at a time: not
        the FD's memory) and the CPU second it was handed over."""
        for start in range(0, files, BATCH):
            entries = tuple(
                (_path(n), n, n + 1, 8, 0o100644) for n in range(start, min(start + BATCH, files))
            )
            yield encode_message(AccurateBatch(entries=entries)), time.process_time()

    receive = 0.0
    del_every = 1000
    if variant == "new":
        accurate = AccurateList(directory)
        for wire, t in batches():
            msg = decode_message(wire)
            assert isinstance(msg, AccurateBatch)
            accurate.add(msg.entries)
            receive += time.process_time() - t
        t1 = time.process_time()
        for n in range(files + files // del_every):
            path = _path(n)
            if n % del_every == 1:
                continue  # deleted since
            known = accurate.find(path)
            if known is not None:
                accurate.mark_seen(known[0])
                _ = known[1:] == (n, n + 1, 8, 0o100644)
        t2 = time.process_time()
        unseen = sum(1 for _ in accurate.unseen())
        accurate.close()
    else:
        table: dict[bytes, AccurateEntry] = {}
        for wire, t in batches():
            msg = decode_message(wire)
            assert isinstance(msg, AccurateBatch)
            for path, mtime_ns, ctime_ns, size, mode in msg.entries:
                table[path] = AccurateEntry(mtime_ns, ctime_ns, size, mode)
            receive += time.process_time() - t
        t1 = time.process_time()
        seen: set[bytes] = set()
        for n in range(files + files // del_every):
            path = _path(n)
            if n % del_every == 1:
                continue
            seen.add(path)
            before = table.get(path)
            if before is not None:
                _ = (before.mtime_ns, before.ctime_ns, before.size, before.mode) == (n, n + 1, 8, 0)
        t2 = time.process_time()
        unseen = len(sorted(p for p in table if p not in seen))
    t3 = time.process_time()
    print(
        f"{variant:>4}: files={files}  peak RSS after imports {base:.0f} MB,"
        f" at the end {_hwm_mb():.0f} MB  CPU s: receive {receive:.2f}, walk lookups"
        f" {t2 - t1:.2f}, unseen {t3 - t2:.2f} ({unseen} deleted)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None, help="where the paths file goes")
    parser.add_argument("--variant", choices=("new", "dict"), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    if args.variant is not None:
        _run(args.variant, args.files, args.dir or Path(tempfile.gettempdir()))
        return
    for variant in ("dict", "new"):
        subprocess.run(
            [sys.executable, __file__, "--variant", variant, "--files", str(args.files)]
            + (["--dir", os.fspath(args.dir)] if args.dir else []),
            check=True,
        )


if __name__ == "__main__":
    main()
