"""Start-up errors end the daemon with exit 42 and one line, before READY=1 (#13): systemd's
RestartPreventExitStatus=42 then stops a restart loop."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from common.pki import init_pki

ROOT = Path(__file__).resolve().parents[2]


def _start(
    module: str, conf: Path, tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], list[bytes]]:
    notify = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.setblocking(False)
    try:
        env = {
            **os.environ,
            "NOTIFY_SOCKET": str(notify),
            "PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT)),
        }
        done = subprocess.run(
            [sys.executable, "-m", module, "-f", "-c", str(conf)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )
        notes: list[bytes] = []
        while True:
            try:
                notes.append(sock.recv(4096))
            except BlockingIOError:
                break
        return done, notes
    finally:
        sock.close()


def _director(tmp_path: Path, catalog: str, tls: str = "  TLS Enable = no\n") -> Path:
    conf = tmp_path / "dir.conf"
    conf.write_text(
        f'Director {{\n  Name = d\n  Password = "x"\n  DirPort = 0\n  DirAddress = 127.0.0.1\n'
        f'  Working Directory = "{tmp_path}"\n{tls}}}\n'
        f'Catalog {{\n  Name = MyCatalog\n  DB Driver = sqlite3\n  DB Name = "{catalog}"\n}}\n'
    )
    return conf


def test_an_unopenable_catalog_exits_42_before_ready(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    done, notes = _start(
        "director", _director(tmp_path, str(tmp_path / "a-file" / "catalog.db")), tmp_path
    )
    assert done.returncode == 42, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("strongroom-dir: cannot open the catalog"), (
        done.stderr
    )
    assert "Traceback" not in done.stderr
    assert not any(b"READY=1" in n for n in notes), notes


@pytest.mark.parametrize("mode", [0o644, 0o666])
def test_a_key_others_can_read_exits_42_before_ready(tmp_path: Path, mode: int) -> None:
    certs = init_pki(tmp_path / "pki", ["d"], hostnames=["localhost"])
    certs["d"].key.chmod(mode)
    tls = (
        f'  TLS Certificate = "{certs["d"].cert}"\n  TLS Key = "{certs["d"].key}"\n'
        f'  TLS CA Certificate File = "{tmp_path / "pki" / "ca.pem"}"\n'
    )
    done, notes = _start(
        "director", _director(tmp_path, str(tmp_path / "catalog.db"), tls), tmp_path
    )
    assert done.returncode == 42, done.stderr
    assert "accessible by others" in done.stderr and "Traceback" not in done.stderr
    assert not any(b"READY=1" in n for n in notes), notes
