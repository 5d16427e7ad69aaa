"""One lifecycle for every daemon: arguments (41), configuration (42), logging, fork, signals, run."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NoReturn

import uvloop

from common.cli import EXIT_CONFIG, EXIT_OK, EXIT_USAGE, UsageParser
from common.config import ConfigError
from common.daemon import Daemon, StartupError, tls_problems
from common.logging import configure_logging
from common.version import VERSION

CONFIG_ROOT: Final = Path("/etc/strongroom")
# Files a daemon creates (volumes, catalog, logs, spool, state) are not for other users: no write
# for the group, nothing for others. systemd units say the same (UMask=0027).
DAEMON_UMASK: Final = 0o027


class UsageError(Exception):
    """A command-line error (exit 41)."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as exit status 41, as Bareos does."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


@dataclass(frozen=True)
class DaemonSpec:
    """How one daemon binary loads its configuration and builds its daemon object."""

    prog: str
    description: str
    load_config: Callable[[Path], Any]
    create: Callable[[Path, Any, Any], Daemon[Any]]
    own_resource: Callable[[Any], Any]
    resource_label: str
    extra_checks: Callable[[Any], list[str]] | None = None

    def runtime_checks(self, config: Any) -> list[str]:
        """Problems that only matter when the daemon starts (missing TLS files, ...)."""
        own = self.own_resource(config)
        problems = tls_problems(own, f"{self.resource_label} resource {own.name!r}")
        if self.extra_checks is not None:
            problems += self.extra_checks(config)
        return problems


def default_config_path(prog: str) -> Path:
    """`/etc/strongroom/<prog>.d` when it exists, else `/etc/strongroom/<prog>.conf`."""
    tree = CONFIG_ROOT / f"{prog}.d"
    return tree if tree.is_dir() else CONFIG_ROOT / f"{prog}.conf"


def build_parser(spec: DaemonSpec) -> argparse.ArgumentParser:
    parser = UsageParser(prog=spec.prog, description=spec.description)
    parser.add_argument("-c", dest="config", type=Path, help="configuration file or directory")
    parser.add_argument(
        "-t",
        dest="test",
        action="store_true",
        help="test the configuration and exit (0 ok, 42 error)",
    )
    parser.add_argument("-f", dest="foreground", action="store_true", help="run in the foreground")
    parser.add_argument("-d", dest="debug", type=int, default=0, metavar="N", help="debug level")
    parser.add_argument(
        "--log-file",
        type=Path,
        help="write logs here (default: stderr, or <name>.log in the working directory when in the background)",
    )
    parser.add_argument("-v", "--version", action="version", version=f"%(prog)s {VERSION}")
    return parser


def load_or_exit(spec: DaemonSpec, path: Path) -> Any:
    """Load the configuration; on error print file:line and exit 42."""
    try:
        return spec.load_config(path)
    except ConfigError as exc:
        sys.stderr.write(f"{spec.prog}: configuration error: {exc}\n")
        raise SystemExit(EXIT_CONFIG) from exc
    except OSError as exc:
        sys.stderr.write(f"{spec.prog}: cannot read configuration {path}: {exc.strerror or exc}\n")
        raise SystemExit(EXIT_CONFIG) from exc


def _daemonize(log_path: Path) -> None:
    """Classic double fork; stdio goes to the log file."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.close(null)


async def _serve(daemon: Daemon[Any]) -> int:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, daemon.request_stop)
    loop.add_signal_handler(signal.SIGINT, daemon.request_stop)
    loop.add_signal_handler(signal.SIGHUP, daemon.reload)
    return await daemon.run()


def daemon_main(spec: DaemonSpec, argv: Sequence[str] | None = None) -> NoReturn:
    os.umask(DAEMON_UMASK)  # before anything below creates a file
    args = build_parser(spec).parse_args(argv)
    path: Path = args.config or default_config_path(spec.prog)
    loaded = load_or_exit(spec, path)
    for warning in loaded.warnings:
        sys.stderr.write(f"{spec.prog}: warning: {warning}\n")
    problems = spec.runtime_checks(loaded.config)
    if args.test:
        for problem in problems:
            sys.stderr.write(f"{spec.prog}: warning: {problem}\n")
        sys.stdout.write(f"{spec.prog}: configuration {path} OK\n")
        raise SystemExit(EXIT_OK)
    if problems:
        for problem in problems:
            sys.stderr.write(f"{spec.prog}: configuration error: {problem}\n")
        raise SystemExit(EXIT_CONFIG)
    stream = None
    if args.log_file is not None:
        args.log_file.parent.mkdir(parents=True, exist_ok=True)
        stream = args.log_file.open("a", buffering=1)
    if not args.foreground:
        own_dir = getattr(spec.own_resource(loaded.config), "working_directory", None)
        log_path = args.log_file or Path(own_dir or "/var/log/strongroom") / f"{spec.prog}.log"
        _daemonize(log_path)
    log = configure_logging(spec.prog, path.name, args.debug, stream=stream)
    try:
        daemon = spec.create(path, loaded, log)
        code = uvloop.run(_serve(daemon))
    except StartupError as exc:
        if stream is not None:  # a log file: record it there; stderr gets the one line below
            log.error("startup_failed", reason=str(exc))
        sys.stderr.write(f"{spec.prog}: {exc}\n")
        raise SystemExit(exc.exit_code) from exc
    raise SystemExit(code)
