"""Installations on loopback with free ports, shared by the benchmarks and the system tests."""

from __future__ import annotations

import re
import shutil
import socket
from pathlib import Path

from console.templates import Layout


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_test_layout(root: Path, tls: bool = True) -> Layout:
    """A whole installation (test-dir, test-sd, test-fd) on 127.0.0.1 with free ports."""
    return Layout(
        root=root,
        director="test-dir",
        storage="test-sd",
        client="test-fd",
        console="admin",
        address="127.0.0.1",
        dir_port=free_port(),
        sd_port=free_port(),
        fd_port=free_port(),
        dir_password="dir-password-for-tests",
        sd_password="sd-password-for-tests",
        fd_password="fd-password-for-tests",
        console_password="console-password-for-tests",
        tls=tls,
        auth_timeout=3,
    )


def sd2_config(root: Path, port: int) -> Path:
    """A second Storage Daemon (test-sd2, device FileStorage2) beside an installation, and a second
    device (FileStorageB) on the first: for local and remote copies."""
    src, dst = root / "etc" / "strongroom-sd.d", root / "etc" / "strongroom-sd2.d"
    shutil.copytree(src, dst)
    storage = next((dst / "storage").glob("*.conf"))
    text = storage.read_text()
    text = re.sub(r"Name = .*", "Name = test-sd2", text, count=1)
    text = re.sub(r"SD Port = \d+", f"SD Port = {port}", text)
    text = text.replace("working/sd", "working/sd2")
    storage.write_text(text)
    device = dst / "device" / "FileStorage.conf"
    device.write_text(
        device.read_text()
        .replace("Name = FileStorage", "Name = FileStorage2")
        .replace(str(root / "storage"), str(root / "storage2"))
    )
    (root / "storage2").mkdir()
    (root / "working" / "sd2").mkdir(parents=True)
    # a second device on the first SD, for local copies
    sd1_device = src / "device" / "FileStorageB.conf"
    sd1_device.write_text(
        (src / "device" / "FileStorage.conf")
        .read_text()
        .replace("Name = FileStorage", "Name = FileStorageB")
        .replace(str(root / "storage"), str(root / "storage-b"))
    )
    (root / "storage-b").mkdir()
    return dst
