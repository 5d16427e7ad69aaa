"""The three daemons as real processes: status over TLS, refusals, hostile frames, stop, reload."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from console.admin import write_installation
from protocol.frames import Signal, encode_frame, encode_signal
from protocol.messages import Code, ErrorReply, Hello, decode_message, encode_message
from tests.system.conftest import Installation, make_test_layout


def _wait_for_log(
    inst: Installation, prog: str, needle: str, timeout: float = 10, after: int = 0
) -> str:
    """The log text from offset `after` once it contains `needle`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = inst.log(prog)[after:]
        if needle in text:
            return text
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} never appeared in the {prog} log:\n{inst.log(prog)[-3000:]}")


def _tls_socket(inst: Installation, port: int) -> ssl.SSLSocket:
    pki = inst.layout.pki
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    ctx.check_hostname = False
    ctx.load_cert_chain(str(pki / "admin.pem"), str(pki / "admin.key"))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw)


def _read_frame(sock: socket.socket) -> bytes | None:
    header = b""
    while len(header) < 4:
        chunk = sock.recv(4 - len(header))
        if not chunk:
            return None
        header += chunk
    (length,) = struct.unpack(">i", header)
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            return None
        body += chunk
    return body


def _closed_by_peer(sock: socket.socket, timeout: float = 10) -> bool:
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except (ConnectionError, ssl.SSLError):
        return True
    except TimeoutError:
        return False


def test_status_of_each_daemon_over_tls(installation: Installation) -> None:
    layout = installation.layout
    result = installation.console("status dir", "status client=test-fd", "status storage=File")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "test-dir (Director)" in out
    assert "test-fd (File Daemon)" in out
    assert "test-sd (Storage Daemon)" in out
    assert out.count("(TLS)") == 3
    assert f"127.0.0.1:{layout.dir_port}" in out
    assert f"127.0.0.1:{layout.fd_port}" in out
    assert f"127.0.0.1:{layout.sd_port}" in out
    assert "No Jobs running." in out


def test_status_json(installation: Installation) -> None:
    result = installation.console("status dir", "status client=test-fd", args=("--json",))
    assert result.returncode == 0, result.stderr
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    director = docs[0]["result"]["director"]
    assert director["name"] == "test-dir"
    assert director["tls"] is True
    assert director["running_jobs"] == []
    assert director["connections"]["active"] >= 1
    assert docs[1]["result"]["client"]["name"] == "test-fd"
    assert docs[1]["result"]["client"]["uptime"] > 0


def test_api_json_switch(installation: Installation) -> None:
    result = installation.console(".api json", "version")
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert docs[-1]["result"]["version"]["name"] == "test-dir"


def test_show_redacts_passwords(installation: Installation) -> None:
    result = installation.console("show clients", "show director", "show console=admin", "show all")
    assert result.returncode == 0, result.stderr
    assert "Client {" in result.stdout
    for secret in ("fd-password-for-tests", "dir-password-for-tests", "console-password-for-tests"):
        assert secret not in result.stdout
    assert "[redacted]" in result.stdout


def test_unknown_command_and_unknown_client(installation: Installation) -> None:
    result = installation.console("frobnicate", "status client=nosuch")
    assert result.returncode == 1
    assert "frobnicate: is an invalid command." in result.stdout
    assert "nosuch" in result.stdout


def test_wrong_console_password_refused_and_logged(
    installation: Installation, tmp_path: Path
) -> None:
    conf = installation.layout.console_config.read_text().replace(
        "console-password-for-tests", "not-the-password"
    )
    bad = tmp_path / "bad-srconsole.conf"
    bad.write_text(conf)
    result = installation.console("status dir", config=bad)
    assert result.returncode == 1
    assert "auth" in result.stderr
    assert "1999" in result.stderr or "Authorization failed" in result.stderr
    log = _wait_for_log(installation, "strongroom-dir", "authentication_failed")
    assert "wrong password" in log
    # The daemon keeps serving everyone else.
    assert installation.console("status dir").returncode == 0


def test_plain_client_to_tls_daemon_is_refused_on_both_sides(
    installation: Installation, tmp_path: Path
) -> None:
    # A raw plain-TCP client gets a clear refusal frame sent in clear.
    with socket.create_connection(("127.0.0.1", installation.layout.fd_port), timeout=10) as sock:
        sock.sendall(
            encode_frame(encode_message(Hello(role="director", name="test-dir", version="x")))
        )
        body = _read_frame(sock)
    assert body is not None
    reply = decode_message(body)
    assert isinstance(reply, ErrorReply)
    assert reply.code == Code.TLS_REQUIRED
    assert "requires TLS" in reply.text
    _wait_for_log(installation, "strongroom-fd", "plain_tcp_refused")
    # srconsole configured for plain TCP says so clearly.
    conf = installation.layout.console_config.read_text()
    plain = tmp_path / "plain-srconsole.conf"
    plain.write_text(_strip_tls(conf))
    result = installation.console("status dir", config=plain)
    assert result.returncode == 1
    assert "requires TLS" in result.stderr


def _strip_tls(text: str) -> str:
    lines = [line for line in text.splitlines() if "TLS" not in line]
    out: list[str] = []
    for line in lines:
        out.append(line)
        if line.strip().startswith("Password"):
            out.append("  TLS Enable = no")
    return "\n".join(out) + "\n"


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"\x00\x00\x00\x05garbage-that-is-not-msgpack", id="garbage"),
        pytest.param(struct.pack(">i", 0x7FFFFFF0), id="oversized"),
        pytest.param(struct.pack(">i", -99), id="unknown-signal"),
        pytest.param(encode_frame(b"\x93\x01\x02\x03"), id="not-a-map"),
    ],
)
def test_hostile_frames_close_only_that_connection(
    installation: Installation, payload: bytes
) -> None:
    for port in (installation.layout.dir_port, installation.layout.sd_port):
        with _tls_socket(installation, port) as sock:
            sock.sendall(payload)
            assert _closed_by_peer(sock), "daemon kept a connection that sent a hostile frame"
    result = installation.console("status dir", "status storage=File")
    assert result.returncode == 0, result.stderr
    _wait_for_log(installation, "strongroom-dir", "connection_closed")


def test_stalled_peer_is_dropped(installation: Installation) -> None:
    with _tls_socket(installation, installation.layout.dir_port) as sock:
        # Send half a frame header and then nothing: the handshake deadline (3 s here) closes it.
        sock.sendall(b"\x00\x00")
        started = time.monotonic()
        assert _closed_by_peer(sock, timeout=15)
        assert time.monotonic() - started < 12
    _wait_for_log(installation, "strongroom-dir", "stalled")
    assert installation.console("status dir").returncode == 0


def test_heartbeat_signal_is_ignored(installation: Installation) -> None:
    with _tls_socket(installation, installation.layout.dir_port) as sock:
        sock.sendall(encode_signal(Signal.HEARTBEAT))
        sock.sendall(encode_frame(encode_message(Hello(role="console", name="admin", version="x"))))
        body = _read_frame(sock)
    assert body is not None
    assert decode_message(body).TYPE == "challenge"


def test_reload_applies_good_config_and_keeps_old_on_error(installation: Installation) -> None:
    clients = installation.layout.config_path("strongroom-dir") / "client"
    extra = clients / "extra-fd.conf"
    extra.write_text('Client {\n  Name = extra-fd\n  Address = 127.0.0.1\n  Password = "x"\n}\n')
    try:
        result = installation.console("reload", "show client=extra-fd")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Name = extra-fd" in result.stdout or 'Name = "extra-fd"' in result.stdout
        extra.write_text("Client {\n  Name = extra-fd\n  Addres = 127.0.0.1\n")
        result = installation.console("reload", "show client=extra-fd", "status dir")
        assert "reload failed" in result.stdout
        assert "extra-fd.conf:" in result.stdout
        assert "test-dir (Director)" in result.stdout  # still serving with the old configuration
        assert "extra-fd" in result.stdout
    finally:
        extra.unlink()
        installation.console("reload")


def test_sighup_reload_rejects_bad_config(installation: Installation) -> None:
    bad = installation.layout.config_path("strongroom-dir") / "client" / "broken.conf"
    bad.write_text("Client {\n  Name = broken\n")
    try:
        offset = len(installation.log("strongroom-dir"))
        os.kill(installation.pids["strongroom-dir"], signal.SIGHUP)
        log = _wait_for_log(installation, "strongroom-dir", "reload_rejected", after=offset)
        assert "broken.conf" in log
        assert installation.console("status dir").returncode == 0
    finally:
        bad.unlink()


def test_plain_installation_works_without_tls(plain_installation: Installation) -> None:
    result = plain_installation.console(
        "status dir", "status client=test-fd", "status storage=File"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(plain TCP)") == 3


def test_sigterm_exits_zero_quickly(tmp_path: Path) -> None:
    layout = make_test_layout(tmp_path)
    write_installation(layout)
    for prog, module in (
        ("strongroom-dir", "director"),
        ("strongroom-sd", "storaged"),
        ("strongroom-fd", "filed"),
    ):
        log = tmp_path / f"{prog}.stderr"
        with log.open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", module, "-f", "-c", str(layout.config_path(prog))],
                stdout=err,
                stderr=err,
            )
        deadline = time.monotonic() + 20
        while "daemon_ready" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, log.read_text()
        assert time.monotonic() - started < 5
        assert "daemon_stopped" in log.read_text()
