"""Start daemons as background processes and wait for their READY=1 on our own notify socket."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

READY_TIMEOUT: Final = 30.0
# Started daemons outlive this function; holding their Popen objects keeps them from being
# reaped (and warned about) by the garbage collector while they run.
_CHILDREN: list[subprocess.Popen[bytes]] = []
STOP_TIMEOUT: Final = 15.0


class LaunchError(Exception):
    """A daemon did not come up; the message quotes its log."""


@dataclass(frozen=True)
class DaemonProcess:
    prog: str
    module: str
    config: Path
    log_file: Path
    pid_file: Path


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start(process: DaemonProcess, timeout: float = READY_TIMEOUT) -> int:
    """Start one daemon in its own session; return its pid once it has said READY=1."""
    existing = running_pid(process.pid_file)
    if existing is not None:
        return existing
    process.log_file.parent.mkdir(parents=True, exist_ok=True)
    process.pid_file.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="strongroom-notify-") as tmp:
        notify_path = Path(tmp) / "notify.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify.bind(str(notify_path))
            env = dict(os.environ, NOTIFY_SOCKET=str(notify_path))
            with process.log_file.open("ab") as log:
                child = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        process.module,
                        "-f",
                        "-c",
                        str(process.config),
                        "--log-file",
                        str(process.log_file),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    env=env,
                    start_new_session=True,
                )
            deadline = time.monotonic() + timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    child.terminate()
                    raise LaunchError(
                        f"{process.prog} did not report READY within {timeout:g} s:\n{_tail(process.log_file)}"
                    )
                notify.settimeout(min(remaining, 0.5))
                try:
                    message = notify.recv(4096).decode(errors="replace")
                except TimeoutError:
                    if child.poll() is not None:
                        raise LaunchError(
                            f"{process.prog} exited with status {child.returncode}:\n{_tail(process.log_file)}"
                        ) from None
                    continue
                if "READY=1" in message.splitlines():
                    break
    _CHILDREN.append(child)
    process.pid_file.write_text(f"{child.pid}\n")
    return child.pid


def stop(pid_file: Path, timeout: float = STOP_TIMEOUT) -> bool:
    """SIGTERM the daemon named by a pid file and wait for it to exit."""
    pid = running_pid(pid_file)
    if pid is None:
        with contextlib.suppress(OSError):
            pid_file.unlink()
        return False
    os.kill(pid, signal.SIGTERM)
    child = next((c for c in _CHILDREN if c.pid == pid), None)
    if child is not None:
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        _CHILDREN.remove(child)
    else:
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        pid_file.unlink()
    return True
