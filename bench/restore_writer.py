"""The File Daemon's restore writer alone: CPU per file and per MiB, without daemons or network.

    .venv/bin/python bench/restore_writer.py TREE [--out DIR] [--reps 3] [--profile]

Reads TREE once with the backup reader (XXH128 signatures), packs its records into batch frames
of about 512 KiB as the Storage Daemon sends them, and decodes them again, so the writer sees
views of received frame bodies, as in a restore. Then, `--reps` times, restores them into an empty
`--out` directory through `RestoreWriter.feed_batch` (in this thread) and prints the CPU seconds
(user and system of this process, `os.times`) and µs per file, under the File Daemon's umask
(`DAEMON_UMASK`), each repetition's tree removed before the next. `--profile` runs one more
restore under cProfile and prints the top functions. The restored tree is compared with TREE
(content, mode, times, size) after each repetition: a fast restore that is wrong is no result.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import stat
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.runtime import DAEMON_UMASK
from filed.backup import BackupReader
from filed.restore import RestoreWriter
from protocol.fileset import FileSetSpec, IncludeSpec, OptionsSpec
from protocol.records import Record, decode_batch, encode_batch_parts

FRAME_BYTES = 512 * 1024


def read_frames(tree: Path) -> tuple[list[bytes], int]:
    """The tree's records as batch frame bodies, and its file count."""
    spec = FileSetSpec(
        name="bench",
        include=(
            IncludeSpec(files=(os.fsencode(tree),), options=(OptionsSpec(signature="XXH128"),)),
        ),
    )
    reader = BackupReader(spec)
    frames: list[bytes] = []
    batch: list[Record] = []
    size = 0
    files = 0
    for record in reader.records():
        batch.append(record)
        size += len(record.payload) + 16
        files += record.stream == 1
        if size >= FRAME_BYTES:
            frames.append(b"".join(encode_batch_parts(batch)))
            batch, size = [], 0
    if batch:
        frames.append(b"".join(encode_batch_parts(batch)))
    return frames, files


def restore(frames: list[bytes], out: Path) -> RestoreWriter:
    writer = RestoreWriter(out, replace="always")
    feed_batch = getattr(writer, "feed_batch", None)  # a writer before #14 took one record a call
    for body in frames:
        records = decode_batch(bytearray(body))
        if feed_batch is not None:
            feed_batch(records)
        else:
            for record in records:
                writer.feed(record)
    writer.finish()
    return writer


def compare(tree: Path, out: Path) -> int:
    """Differences between TREE and its restore under OUT (restored with its full path)."""
    restored = out / tree.relative_to("/")
    bad = 0
    for src_dir, dirs, files in os.walk(tree):
        dst_dir = restored / Path(src_dir).relative_to(tree)
        for name in dirs + files:
            a, b = os.lstat(os.path.join(src_dir, name)), os.lstat(dst_dir / name)
            same = (a.st_mode, a.st_mtime_ns) == (b.st_mode, b.st_mtime_ns)
            if same and stat.S_ISREG(a.st_mode):  # a directory's size is the file system's
                same = Path(src_dir, name).read_bytes() == (dst_dir / name).read_bytes()
            bad += not same
    return bad


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("tree", type=Path)
    parser.add_argument("--out", type=Path, default=Path("/var/tmp/restore-writer-bench"))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    tree = args.tree.resolve()
    os.umask(DAEMON_UMASK)  # as the File Daemon runs: what a restore must fchmod depends on it
    frames, files = read_frames(tree)
    mib = sum(map(len, frames)) / 2**20
    print(f"{tree}: {files} files, {len(frames)} frames, {mib:.1f} MiB")
    for rep in range(args.reps + (1 if args.profile else 0)):
        out = args.out / f"rep-{rep}"
        shutil.rmtree(out, ignore_errors=True)
        os.sync()
        profiler = cProfile.Profile() if rep == args.reps else None
        before, wall = os.times(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        writer = restore(frames, out)
        if profiler is not None:
            profiler.disable()
        after, wall = os.times(), time.perf_counter() - wall
        user, system = after.user - before.user, after.system - before.system
        cpu = user + system
        bad = compare(tree, out)
        shutil.rmtree(out)  # a tree left behind slows the next repetition's file creation
        label = "profiled" if profiler is not None else f"rep {rep + 1}"
        print(
            f"{label}: CPU {cpu:.3f} s (user {user:.3f}, sys {system:.3f}; "
            f"{cpu / files * 1e6:.0f} µs/file), wall {wall:.3f} s, "
            f"{writer.stats.files} files, {writer.stats.errors} errors, {bad} differences",
            flush=True,
        )
        if profiler is not None:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()
