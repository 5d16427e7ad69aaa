"""The File Daemon's restore writer alone: CPU per file and per MiB, without daemons or network.

    .venv/bin/python bench/restore_writer.py TREE [--out DIR] [--reps 3] [--profile] [--split N]

Reads TREE once with the backup reader (XXH128 signatures), packs its records into batch frames
of about 512 KiB as the Storage Daemon sends them, and decodes them again, so the writer sees
views of received frame bodies, as in a restore. Then, `--reps` times, restores them into an empty
`--out` directory through `RestoreWriter.feed_batch` (in this thread) and prints the CPU seconds
(user and system of this process, `os.times`) and µs per file, under the File Daemon's umask
(`DAEMON_UMASK`), each repetition's tree removed before the next. `--profile` runs one more
restore under cProfile and prints the top functions. The restored tree is compared with TREE
(content, mode, times, size) after each repetition: a fast restore that is wrong is no result.

`--split N` measures instead, in turn, one writer and N writing processes (forked, each with a
`RestoreWriter` of its own on the same `--out`) with the files split by the directory below
TREE they are in: how far the kernel's side of writing a tree spreads over more CPUs (the
GIL keeps threads from it; docs/performance.md, session 7).
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
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.runtime import DAEMON_UMASK
from filed.backup import BackupReader
from filed.restore import RestoreWriter
from protocol.attributes import FileType, decode_attributes
from protocol.fileset import FileSetSpec, IncludeSpec, OptionsSpec
from protocol.records import Record, Stream, decode_batch, encode_batch_parts

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


def split_frames(frames: list[bytes], tree: Path, shares: int) -> list[list[bytes]]:
    """The frames' files in `shares` shares, by the directory below TREE they are in (the
    largest first, each to the share with the fewest files so far), packed as frames again. A
    hard link's directory goes with its first name's, so that one process restores both."""
    depth = len(tree.parts)  # a path's component below TREE (its parts start with b"")
    files: list[tuple[bytes, list[Record]]] = []
    top_of: dict[int, bytes] = {}  # file index -> its directory below TREE
    joined: dict[bytes, bytes] = {}  # directory -> the one whose share it shares

    def root(top: bytes) -> bytes:
        while joined.get(top, top) != top:
            top = joined[top]
        return top

    for body in frames:
        for r in decode_batch(bytearray(body)):
            record = Record(r.file_index, r.stream, bytes(r.payload))
            if record.stream == Stream.ATTRIBUTES or not files:
                attrs = decode_attributes(record.payload)
                parts = attrs.path.split(b"/")
                top = parts[depth] if len(parts) > depth else b""
                top_of[record.file_index] = top
                if attrs.type == FileType.HARDLINK and attrs.link_index in top_of:
                    joined[root(top)] = root(top_of[attrs.link_index])
                files.append((top, []))
            files[-1][1].append(record)
    count: dict[bytes, int] = {}
    for top, _records in files:
        count[root(top)] = count.get(root(top), 0) + 1
    share_of: dict[bytes, int] = {}
    sizes = [0] * shares
    for top in sorted(count, key=lambda t: -count[t]):
        share = sizes.index(min(sizes))
        share_of[top] = share
        sizes[share] += count[top]
    out: list[list[bytes]] = []
    for share in range(shares):
        batch: list[Record] = []
        size = 0
        packed: list[bytes] = []
        for top, records in files:
            if share_of[root(top)] != share:
                continue
            for record in records:
                batch.append(record)
                size += len(record.payload) + 16
                if size >= FRAME_BYTES:
                    packed.append(b"".join(encode_batch_parts(batch)))
                    batch, size = [], 0
        if batch:
            packed.append(b"".join(encode_batch_parts(batch)))
        out.append(packed)
    return out


def restore_in_processes(shares: list[list[bytes]], out: Path) -> None:
    """Each share restored by a process of its own (forked), all into `out`, at once; a process
    that fails says why on stderr."""
    children: list[int] = []
    try:
        for frames in shares:
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    stats = restore(frames, out).stats
                    for text in stats.failed[:5]:
                        print(f"writing process {os.getpid()}: {text}", file=sys.stderr)
                    code = 0 if stats.errors == 0 else 1
                except BaseException:  # the child's boundary: say what happened, then exit
                    traceback.print_exc()
                finally:
                    sys.stderr.flush()
                    os._exit(code)
            children.append(pid)
    finally:
        failed = [pid for pid in children if os.waitpid(pid, 0)[1] != 0]
    if failed:
        raise SystemExit(f"{len(failed)} writing process(es) failed")


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
    parser.add_argument("--split", type=int, default=0, metavar="N")
    args = parser.parse_args()
    tree = args.tree.resolve()
    os.umask(DAEMON_UMASK)  # as the File Daemon runs: what a restore must fchmod depends on it
    frames, files = read_frames(tree)
    mib = sum(map(len, frames)) / 2**20
    print(f"{tree}: {files} files, {len(frames)} frames, {mib:.1f} MiB")
    if args.split > 1:
        split(tree, frames, files, args)
        return
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


def split(tree: Path, frames: list[bytes], files: int, args: argparse.Namespace) -> None:
    """One writer against `--split` writing processes, in turn, on the same records."""
    shares = split_frames(frames, tree, args.split)

    def one(out: Path) -> int:
        return restore(frames, out).stats.errors

    def several(out: Path) -> int:
        restore_in_processes(shares, out)  # a process with errors fails the run
        return 0

    runs: tuple[tuple[str, Callable[[Path], int]], ...] = (
        ("one process", one),
        (f"{args.split} processes", several),
    )
    for rep in range(args.reps):
        for label, run in runs:
            out = args.out / f"rep-{rep}"
            shutil.rmtree(out, ignore_errors=True)
            os.sync()
            before, wall = os.times(), time.perf_counter()
            errors = run(out)
            after, wall = os.times(), time.perf_counter() - wall
            cpu = sum(after[:4]) - sum(before[:4])  # this process's and its children's
            bad = compare(tree, out)
            shutil.rmtree(out)
            print(
                f"rep {rep + 1}, {label}: wall {wall:.3f} s, CPU {cpu:.3f} s, "
                f"{files} files, {errors} errors, {bad} differences",
                flush=True,
            )
    shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()
