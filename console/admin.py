"""`strongroom`: the admin helper — `init` (CA and certificates), `quickstart`, `stop`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final, NoReturn

from common.cli import UsageParser
from common.net import NetError
from common.pki import PkiError, init_pki
from console import demo, launcher
from console.templates import Layout, client_files, console_text, director_files, storage_files
from protocol.errors import ProtocolError

DEFAULT_PORTS: Final = (9101, 9102, 9103)
DAEMONS: Final = (
    ("strongroom-sd", "storaged"),
    ("strongroom-fd", "filed"),
    ("strongroom-dir", "director"),
)


def _port_free(address: str, port: int) -> bool:
    """Whether a daemon could listen on the port: as the daemons do, with SO_REUSEADDR, so that
    the connections a `strongroom stop` left in TIME_WAIT do not make a free port look taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def choose_ports(address: str, base: int | None) -> tuple[int, int, int]:
    """Bareos's 9101–9103 when free (or base..base+2), otherwise three free ports."""
    wanted = (base, base + 1, base + 2) if base else DEFAULT_PORTS
    if all(_port_free(address, p) for p in wanted):
        return wanted
    if base:
        raise SystemExit(f"strongroom: ports {wanted} are not all free on {address}")
    d, f, s = _free_port(address), _free_port(address), _free_port(address)
    return d, f, s


def _write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o600)


def make_layout(root: Path, address: str, port_base: int | None, tls: bool) -> Layout:
    host = socket.gethostname().split(".")[0] or "localhost"
    dir_port, fd_port, sd_port = choose_ports(address, port_base)
    return Layout(
        root=root,
        director=f"{host}-dir",
        storage=f"{host}-sd",
        client=f"{host}-fd",
        console="admin",
        address=address,
        dir_port=dir_port,
        sd_port=sd_port,
        fd_port=fd_port,
        dir_password=secrets.token_urlsafe(24),
        sd_password=secrets.token_urlsafe(24),
        fd_password=secrets.token_urlsafe(24),
        console_password=secrets.token_urlsafe(24),
        tls=tls,
    )


def write_installation(layout: Layout) -> None:
    """Write PKI, three daemon configuration trees, the console configuration and directories."""
    root = layout.root
    for directory in (
        root,
        layout.storage_dir,
        layout.working / "dir",
        layout.working / "sd",
        layout.working / "fd",
        layout.logs,
        layout.run,
        root / "data",
    ):
        directory.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    if layout.tls:
        init_pki(
            layout.pki,
            [layout.director, layout.storage, layout.client, layout.console],
            hostnames=("localhost", "127.0.0.1", "::1", layout.address),
        )
    _write_tree(layout.config_path("strongroom-dir"), director_files(layout))
    _write_tree(layout.config_path("strongroom-sd"), storage_files(layout))
    _write_tree(layout.config_path("strongroom-fd"), client_files(layout))
    _write_tree(layout.etc, {"srconsole.conf": console_text(layout)})
    readme = root / "data" / "README.txt"
    if not readme.exists():
        readme.write_text("Files under this directory are what the quickstart FileSet backs up.\n")


def processes(root: Path) -> list[launcher.DaemonProcess]:
    return [
        launcher.DaemonProcess(
            prog=prog,
            module=module,
            config=root / "etc" / f"{prog}.d",
            log_file=root / "log" / f"{prog}.log",
            pid_file=root / "run" / f"{prog}.pid",
        )
        for prog, module in DAEMONS
    ]


def start_all(root: Path) -> list[tuple[str, int]]:
    started: list[tuple[str, int]] = []
    try:
        for process in processes(root):
            started.append((process.prog, launcher.start(process)))
    except launcher.LaunchError:
        for process in processes(root):
            launcher.stop(process.pid_file)
        raise
    return started


def cmd_init(args: argparse.Namespace) -> int:
    names = args.name or ["strongroom-dir", "strongroom-sd", "strongroom-fd", "admin"]
    hosts = ["localhost", "127.0.0.1", "::1", socket.getfqdn(), *(args.host or [])]
    try:
        certs = init_pki(args.directory, names, hostnames=hosts)
    except PkiError as exc:
        sys.stderr.write(f"strongroom: {exc}\n")
        return 1
    print(f"CA: {args.directory / 'ca.pem'}")
    for name, files in certs.items():
        print(f"{name}: certificate {files.cert}, key {files.key}")
    print(
        "Set 'TLS Certificate', 'TLS Key' and 'TLS CA Certificate File' in each daemon's own resource."
    )
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    root: Path = args.directory.resolve()
    console_conf = root / "etc" / "srconsole.conf"
    if console_conf.exists():
        print(f"Using the existing installation in {root}")
    else:
        layout = make_layout(root, args.address, args.port_base, not args.no_tls)
        write_installation(layout)
        print(f"Wrote a complete configuration into {root}/etc (certificates in {root}/tls)")
    source: Path | None = args.backup.resolve() if args.backup else None
    if source is not None:
        if not source.is_dir():
            sys.stderr.write(f"strongroom: --backup {source}: not a directory\n")
            return 1
        changed = demo.point_fileset_at(root, source)
        pid = launcher.running_pid(root / "run" / "strongroom-dir.pid")
        if changed and pid is not None:
            os.kill(pid, signal.SIGHUP)
            time.sleep(1)
    if args.no_start:
        return 0
    try:
        started = start_all(root)
    except launcher.LaunchError as exc:
        sys.stderr.write(f"strongroom: {exc}\n")
        return 1
    for prog, pid in started:
        print(f"  {prog:<16} running, pid {pid}, log {root / 'log' / (prog + '.log')}")
    if source is not None:
        try:
            code = asyncio.run(demo.run_demo(root, source, demo.backup_job_name(root)))
        except (demo.DemoError, NetError, ProtocolError, OSError) as exc:
            sys.stderr.write(f"strongroom: {exc}\n")
            return 1
        if code != 0:
            return code
    print()
    print("Connect with:")
    print(f"  srconsole -c {console_conf}")
    print(f"  echo 'status dir' | srconsole -c {console_conf}")
    print("Stop with:")
    print(f"  strongroom stop {root}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    root: Path = args.directory.resolve()
    for process in reversed(processes(root)):
        if launcher.stop(process.pid_file):
            print(f"  {process.prog:<16} stopped")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = UsageParser(prog="strongroom", description="Strongroom admin helper.")
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create a private CA and one certificate per daemon")
    init.add_argument("directory", type=Path)
    init.add_argument("--name", action="append", help="certificate name (repeatable)")
    init.add_argument("--host", action="append", help="extra DNS name or IP for the certificates")
    init.set_defaults(func=cmd_init)
    quick = sub.add_parser(
        "quickstart", help="write a complete configuration and start all daemons"
    )
    quick.add_argument("directory", type=Path)
    quick.add_argument("--address", default="127.0.0.1", help="address the daemons listen on")
    quick.add_argument("--port-base", type=int, help="Director port; FD = +1, SD = +2")
    quick.add_argument(
        "--no-tls", action="store_true", help="plain TCP everywhere (not recommended)"
    )
    quick.add_argument("--no-start", action="store_true", help="only write the configuration")
    quick.add_argument(
        "--backup",
        type=Path,
        metavar="PATH",
        help="back PATH up, restore it into DIR/restore/<time>, compare, print a summary",
    )
    quick.set_defaults(func=cmd_quickstart)
    stop = sub.add_parser("stop", help="stop the daemons a quickstart started")
    stop.add_argument("directory", type=Path)
    stop.set_defaults(func=cmd_stop)
    return parser


def main(argv: Sequence[str] | None = None) -> NoReturn:
    args = build_parser().parse_args(argv)
    with contextlib.suppress(BrokenPipeError):
        raise SystemExit(args.func(args))
    raise SystemExit(0)
