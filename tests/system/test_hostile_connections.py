"""2,000 idle connections and a slowloris against the real Director (#13): its memory stays bounded
and a console still gets `status dir` within 2 s."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from tests.system.conftest import Installation
from tests.system.test_backup_restore import run

IDLE = 2000


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_idle_connections_and_a_slowloris_do_not_lock_out_a_console(
    installation: Installation,
) -> None:
    inst = installation
    pid = inst.pids["strongroom-dir"]
    run(inst, "status dir")  # warm up (imports, catalog)
    start = time.monotonic()
    run(inst, "status dir")
    baseline = time.monotonic() - start  # the console process's own start-up and handshake
    before = _rss_kib(pid)
    address = (inst.layout.address, inst.layout.dir_port)
    socks: list[socket.socket] = []
    try:
        slow = socket.create_connection(address, timeout=5)
        slow.sendall(b"\x16")  # a TLS record header, one byte at a time
        socks.append(slow)
        for i in range(IDLE):
            sock = socket.create_connection(address, timeout=5)
            if i % 2:
                sock.sendall(b"\x16\x03")  # a TLS handshake that never goes on
            socks.append(sock)
        slow.sendall(b"\x01")
        start = time.monotonic()
        (status,) = run(inst, "status dir", timeout=30)
        elapsed = time.monotonic() - start
        assert "director" in str(status).lower() or status, status
        assert elapsed < baseline + 2.0, (elapsed, baseline)
        grown = _rss_kib(pid) - before
        assert grown < 64 * 1024, f"the Director grew by {grown} KiB"
        log = inst.log("strongroom-dir")
        assert "unauthenticated_connection_dropped" in log
    finally:
        for sock in socks:
            sock.close()
