"""Which daemon thread is the critical path of a restore, and when: each thread's share of time
runnable, per half second.

    python3 bench/thread_states.py [DEST]

Run from the project root with the peer bench's installation running (`strongroom-ctl.sh start`,
after a backup): it restores everything into DEST (default /var/tmp/bench-restore/t, emptied
first) with `strongroom-ctl.sh restore`, reads `/proc/PID/task/TID/stat` of every thread of the
three daemons every 5 ms while the restore runs, and prints, for each thread that used more than
0.05 CPU-s, its CPU seconds and the percentage of samples in state R (running or waiting for a
CPU) in each half second from the start. A thread near 100 % throughout is what the restore
waits for; `bench/peer_restore.sh --threads` gives the CPU of each thread without the timeline.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

INSTALL = Path("/var/tmp/bench-work/strongroom/qs")
CTL = Path(__file__).resolve().parent.parent.parent / "shared" / "peer-bench" / "strongroom-ctl.sh"
WINDOW = 0.5
SAMPLE = 0.005


def _threads(pids: dict[str, int]) -> dict[str, tuple[str, int]]:
    """name/tid -> (state, utime + stime in ticks) of every thread of the daemons."""
    row: dict[str, tuple[str, int]] = {}
    for name, pid in pids.items():
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()  # after the command, which may hold spaces
            row[f"{name}/{tid}"] = (fields[0], int(fields[11]) + int(fields[12]))
    return row


def main() -> None:
    dest = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/var/tmp/bench-restore/t")
    pids = {
        name: int((INSTALL / "run" / f"strongroom-{name}.pid").read_text())
        for name in ("dir", "fd", "sd")
    }
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    os.sync()
    restore = subprocess.Popen([str(CTL), "restore", str(dest)], stdout=subprocess.DEVNULL)
    started = time.monotonic()
    samples: list[tuple[float, dict[str, tuple[str, int]]]] = []
    while restore.poll() is None:
        samples.append((time.monotonic() - started, _threads(pids)))
        time.sleep(SAMPLE)
    wall = time.monotonic() - started
    if restore.returncode:
        sys.exit(f"the restore failed (exit {restore.returncode})")
    tick = os.sysconf("SC_CLK_TCK")
    series: dict[str, list[tuple[float, str, int]]] = collections.defaultdict(list)
    for at, row in samples:
        for thread, (state, ticks) in row.items():
            series[thread].append((at, state, ticks))
    print(f"restore: {wall:.2f} s wall, {len(samples)} samples; R % per {WINDOW:g} s:")
    windows = int(wall / WINDOW) + 1
    for thread, points in sorted(series.items()):
        cpu = (points[-1][2] - points[0][2]) / tick
        if cpu < 0.05:
            continue
        shares = []
        for w in range(windows):
            states = [s for at, s, _ in points if w * WINDOW <= at < (w + 1) * WINDOW]
            shares.append(f"{100 * states.count('R') / max(1, len(states)):3.0f}")
        print(f"{thread:22s} {cpu:5.2f} CPU-s  {' '.join(shares)}")


if __name__ == "__main__":
    main()
