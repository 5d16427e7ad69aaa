"""CPU seconds of the File Daemon's backup walk alone: BackupReader over a tree, records counted.

    .venv/bin/python bench/backup_walk.py [TREE] [--generate N] [--repeat 3] [--signature XXH128]

Without TREE it walks /var/tmp/bench-data/small when that exists, else generates N small files
(default 50,000, 40 to 4,000 bytes, in a 3-level tree of 20 x 20 x ~N/400 files) under
/var/tmp/strongroom-walk-N, once. Prints, per repetition, the CPU seconds (user + system) of a
full walk with the default options and the given signature, with the files and bytes it read;
then the median. Nothing is sent anywhere: this is the reader's cost per file.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from filed.backup import BackupReader
from protocol.fileset import FileSetSpec, IncludeSpec, OptionsSpec


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def generate(root: Path, files: int) -> Path:
    marker = root / ".complete"
    if marker.exists():
        return root
    per_leaf = max(1, -(-files // 400))
    made = 0
    for a in range(20):
        for b in range(20):
            leaf = root / f"a{a:02d}" / f"b{b:02d}"
            leaf.mkdir(parents=True, exist_ok=True)
            for n in range(min(per_leaf, files - made)):
                size = 40 + (made * 7919) % 3960
                (leaf / f"file{n:04d}.c").write_bytes(bytes([made % 251]) * size)
                made += 1
    marker.touch()
    return root


def walk(tree: Path, signature: str | None) -> tuple[float, int, int]:
    fileset = FileSetSpec(
        name="bench",
        include=(
            IncludeSpec(files=(os.fsencode(tree),), options=(OptionsSpec(signature=signature),)),
        ),
    )
    reader = BackupReader(fileset)
    start = _cpu()
    for _record in reader.records():
        pass
    return _cpu() - start, reader.stats.files, reader.stats.bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", nargs="?", type=Path)
    parser.add_argument("--generate", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--signature", default=None)
    args = parser.parse_args()
    tree = args.tree
    if tree is None:
        small = Path("/var/tmp/bench-data/small")
        tree = (
            small
            if small.is_dir()
            else generate(Path(f"/var/tmp/strongroom-walk-{args.generate}"), args.generate)
        )
    walk(tree, args.signature)  # warm the page and dentry caches
    runs = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        cpu, files, size = walk(tree, args.signature)
        runs.append(cpu)
        print(
            f"{tree}: {files} files, {size / 2**20:.1f} MiB: CPU {cpu:.2f} s,"
            f" wall {time.perf_counter() - t0:.2f} s"
        )
    print(f"median CPU {statistics.median(runs):.2f} s over {len(runs)} walks")


if __name__ == "__main__":
    main()
