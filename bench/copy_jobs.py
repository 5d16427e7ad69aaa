"""Copy benchmark: local copy (one SD, two devices) and remote copy (two SDs) of the 2 GiB set, with `cp`.

    .venv/bin/python bench/copy_jobs.py [--dir /var/tmp/strongroom-bench] [--scale 1.0]

Uses the large files of bench/backup_restore.py (generated there if missing), backs them up once, then
prints MB/s for a local copy job, a remote copy job (best of --repeat alternating runs), and `cp` of the same volume files (followed by
`sync`, as the Storage Daemon makes a volume durable before it confirms), with the ratios and targets:
remote copy >= 80 % of local copy; local copy >= 50 % of cp.

Each round also runs bench/copy_floor.py on the same volumes: bare copies that only move the bytes,
with the Storage Daemons' transport design (threads; two processes on loopback, TLS through memory
BIOs unless --plain) and none of their work on blocks and records. Their
ratio shows how close this transport design can bring a remote copy to a local one on this
machine: on one host the two SDs of a remote copy share its CPUs, and the remote copy has twice the
data copies of a local one plus, with TLS, encryption and decryption. The bare copies append to
files under the installation's `bare/` (2 GiB per round and kind), removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.backup_restore import (
    BALLAST,
    MIB,
    _job,
    _settle,
    generate,
    give_back_memory,
    take_free_memory,
)
from bench.fixtures import free_port, make_test_layout, sd2_config
from console import launcher
from console.admin import processes, write_installation
from console.client import ConsoleClient, choose_credentials
from console.config import load_console_config


def configure(inst: Path, sd1_port: int, sd2_port: int, data: Path) -> None:
    etc = inst / "etc" / "strongroom-dir.d"
    storage = (etc / "storage" / "File.conf").read_text()
    (etc / "storage" / "FileB.conf").write_text(
        storage.replace("Name = File", "Name = FileB").replace(
            "Device = FileStorage", "Device = FileStorageB"
        )
    )
    (etc / "storage" / "File2.conf").write_text(
        storage.replace("Name = File", "Name = File2")
        .replace("Device = FileStorage", "Device = FileStorage2")
        .replace(f"SD Port = {sd1_port}", f"SD Port = {sd2_port}")
    )
    for name, target in (("CopyLocal", "FileB"), ("CopyRemote", "File2")):
        (etc / "pool" / f"{name}.conf").write_text(
            f'Pool {{\n  Name = {name}\n  Pool Type = Backup\n  Storage = {target}\n  Label Format = "{name}-"\n}}\n'
        )
    (etc / "pool" / "Source.conf").write_text(
        'Pool {\n  Name = Source\n  Pool Type = Backup\n  Label Format = "Source-"\n}\n'
    )
    (etc / "fileset" / "big.conf").write_text(
        f'FileSet {{\n  Name = big\n  Include {{\n    File = "{data}"\n  }}\n}}\n'
    )
    (etc / "job" / "big.conf").write_text(
        "Job {\n  Name = big\n  JobDefs = DefaultJob\n  FileSet = big\n  Pool = Source\n  Full Backup Pool = Source\n}\n"
    )
    for name, target in (("copy-local", "CopyLocal"), ("copy-remote", "CopyRemote")):
        (etc / "job" / f"{name}.conf").write_text(
            f"Job {{\n  Name = {name}\n  Type = Copy\n  Pool = Source\n  Next Pool = {target}\n  Selection Type = Job\n"
            '  Selection Pattern = "^big$"\n  Messages = Standard\n  Client = test-fd\n  FileSet = big\n  Storage = File\n}\n'
        )


async def bench(
    root: Path, scale: float, tls: bool = True, repeat: int = 3, only: str | None = None
) -> None:
    data = root / "data"
    large_bytes, _ = generate(data, scale)
    inst = root / "copy-install"
    shutil.rmtree(inst, ignore_errors=True)
    layout = make_test_layout(inst, tls=tls)
    write_installation(layout)
    sd2_port = free_port()
    sd2_etc = sd2_config(inst, sd2_port)
    configure(inst, layout.sd_port, sd2_port, data / "large")
    sd2 = launcher.DaemonProcess(
        prog="strongroom-sd2",
        module="storaged",
        config=sd2_etc,
        log_file=inst / "log" / "strongroom-sd2.log",
        pid_file=inst / "run" / "strongroom-sd2.pid",
    )
    procs = [sd2, *processes(inst)]
    for p in procs:
        launcher.start(p)
    try:
        client = await ConsoleClient.connect(
            choose_credentials(load_console_config(layout.console_config).config, None, None)
        )
        try:
            await _job(client, "run job=big level=Full yes")
            # Local and remote runs alternate so that both see the same disk weather; the best of
            # each is compared (this VM's disk throughput swings by 2x from minute to minute).
            locals_: list[float] = []
            remotes: list[float] = []
            sds = [p for p in procs if p.module == "storaged"][
                ::-1
            ]  # the source's SD, then the second SD
            cpu: dict[str, list[list[float]]] = {
                "local": [],
                "remote": [],
                "bare local": [],
                "bare remote": [],
            }
            bare: dict[str, list[float]] = {"bare local": [], "bare remote": []}
            if BALLAST.parent.is_dir():
                take_free_memory(BALLAST)
            for _ in range(repeat):
                for kind, times in (("local", locals_), ("remote", remotes)):
                    if only is not None and kind != only:
                        continue
                    before = _cpu_seconds(sds)
                    times.append((await _job(client, f"run job=copy-{kind} yes"))[0])
                    cpu[kind].append(
                        [b - a for a, b in zip(before, _cpu_seconds(sds), strict=True)]
                    )
                if only is None:
                    for kind, runs in bare.items():
                        seconds, used = _bare_copy(inst, kind.split()[1], tls)
                        runs.append(seconds)
                        cpu[kind].append(used)
            # CPU seconds of both Storage Daemons per run: above the wall time, the 2 SDs ran in parallel.
            print(
                "local copy runs (s): "
                + " ".join(f"{t:.2f}" for t in locals_)
                + "   CPU (s) of SD1+SD2: "
                + " ".join("+".join(f"{c:.2f}" for c in run) for run in cpu["local"])
            )
            print(
                "remote copy runs (s): "
                + " ".join(f"{t:.2f}" for t in remotes)
                + "   CPU (s) of reading SD+writing SD: "
                + " ".join("+".join(f"{c:.2f}" for c in run) for run in cpu["remote"])
            )
            for kind, runs in bare.items():
                if runs:
                    print(
                        f"{kind} copy runs (s): "
                        + " ".join(f"{t:.2f}" for t in runs)
                        + "   CPU (s): "
                        + " ".join("+".join(f"{c:.2f}" for c in run) for run in cpu[kind])
                    )
            cp = (
                _cp(inst) if only is None else 0.0
            )  # with the ballast still in place, as the jobs had it
        finally:
            await client.close()
    finally:
        for p in reversed(procs):
            launcher.stop(p.pid_file)
        give_back_memory(BALLAST)
        shutil.rmtree(inst / "bare", ignore_errors=True)
    if only is not None:
        return  # one kind alone (for a profiler): the runs above are the figures
    local, remote = min(locals_), min(remotes)
    bare_local, bare_remote = min(bare["bare local"]), min(bare["bare remote"])
    mb = large_bytes / MIB
    link = "TLS" if tls else "plain"
    print(f"\n{'measurement':44} {'seconds':>9} {'MB/s':>10}")
    for what, secs in (
        ("local copy job", local),
        (f"remote copy job (2 SDs, {link})", remote),
        ("cp of the volume files", cp),
        ("bare local copy (no Strongroom)", bare_local),
        (f"bare remote copy (no Strongroom, {link})", bare_remote),
    ):
        print(f"{what:44} {secs:9.2f} {mb / secs:10.1f}")
    print(
        f"\nremote copy vs local copy: {local / remote:6.1%}  (target >= 80%)  {'ok' if local / remote >= 0.8 else 'MISSED'}"
    )
    print(
        f"local copy vs cp:          {cp / local:6.1%}  (target >= 50%)  {'ok' if cp / local >= 0.5 else 'MISSED'}"
    )
    # The same ratio for the bare copies (bench/copy_floor.py): moving the bytes alone, with the same
    # transport (threads, TLS through memory BIOs), no block checks or records.
    print(
        f"bare remote vs bare local: {bare_local / bare_remote:6.1%}  (the same transport without Strongroom's work)"
    )
    print(
        f"local copy job vs bare:    {bare_local / local:6.1%}   remote copy job vs bare: {bare_remote / remote:6.1%}"
    )


def _cp(inst: Path) -> float:
    """Seconds for `cp` of the source volumes, then `sync`."""
    target = inst / "cp-target"
    target.mkdir()
    _settle()
    started = time.perf_counter()
    for volume in sorted((inst / "storage").glob("Source-*")):
        shutil.copyfile(volume, target / volume.name)
    subprocess.run(["sync"], check=True)
    return time.perf_counter() - started


def _bare_copy(inst: Path, kind: str, tls: bool) -> tuple[float, list[float]]:
    """bench/copy_floor.py on the source volumes: (seconds, CPU seconds of each process)."""
    volumes = sorted((inst / "storage").glob("Source-*"))
    work = inst / "bare"
    work.mkdir(exist_ok=True)
    seconds, cpu = 0.0, [0.0, 0.0]
    for volume in volumes:
        # Appended to one file per kind, never deleted during the run: new page cache comes from
        # reclaiming old page cache, as for the copy jobs' volumes.
        command = [
            sys.executable,
            str(Path(__file__).with_name("copy_floor.py")),
            kind,
            str(volume),
            str(work / kind),
        ]
        if tls and kind == "remote":
            command += ["--tls", str(work / "pki")]
        _settle()
        run = subprocess.run(command, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            raise SystemExit(
                f"bench/copy_floor.py {kind} failed (exit {run.returncode}):\n{run.stderr}"
            )
        result = json.loads(run.stdout)
        seconds += result["seconds"]
        cpu = [a + b for a, b in zip(cpu, result["cpu"], strict=False)]
    return seconds, cpu[: 1 if kind == "local" else 2]


def _cpu_seconds(daemons: list[launcher.DaemonProcess]) -> list[float]:
    """User + system CPU time of each daemon's process (all threads), from /proc."""
    seconds = []
    for daemon in daemons:
        pid = launcher.running_pid(daemon.pid_file)
        if pid is None:
            seconds.append(0.0)
            continue
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        seconds.append(ticks / os.sysconf("SC_CLK_TCK"))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/strongroom-bench"))
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument(
        "--plain", action="store_true", help="TLS Enable = no everywhere, to see what TLS costs"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="alternating local/remote runs; the best of each counts",
    )
    parser.add_argument(
        "--only", choices=("local", "remote"), help="run one kind of copy only (to profile it)"
    )
    args = parser.parse_args()
    asyncio.run(bench(args.dir, args.scale, tls=not args.plain, repeat=args.repeat, only=args.only))


if __name__ == "__main__":
    main()
