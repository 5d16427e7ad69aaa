"""`Direct IO` (session 4 of #14): on by default for a Storage Daemon's Device and a File Daemon's
Client, `no` turns it off; both are read from real configuration files."""

from __future__ import annotations

from pathlib import Path

import pytest

from filed.config import load_client_config
from storaged.config import load_storage_config


def _sd(tmp_path: Path, device_line: str) -> bool:
    conf = tmp_path / "strongroom-sd.conf"
    conf.write_text(
        "Storage {\n  Name = s-sd\n  TLS Enable = no\n}\n"
        'Director {\n  Name = d\n  Password = "x"\n  TLS Enable = no\n}\n'
        "Device {\n  Name = FileStorage\n  Media Type = File\n"
        f"  Archive Device = {tmp_path}\n{device_line}}}\n"
    )
    return load_storage_config(conf).config.devices["FileStorage"].direct_io


def _fd(tmp_path: Path, client_line: str) -> bool:
    conf = tmp_path / "strongroom-fd.conf"
    conf.write_text(
        f"Client {{\n  Name = c-fd\n  TLS Enable = no\n{client_line}}}\n"
        'Director {\n  Name = d\n  Password = "x"\n  TLS Enable = no\n}\n'
    )
    return load_client_config(conf).config.client.direct_io


@pytest.mark.parametrize(("line", "expected"), [("", True), ("  Direct IO = no\n", False)])
def test_direct_io_on_a_device_and_a_client(tmp_path: Path, line: str, expected: bool) -> None:
    assert _sd(tmp_path, line) is expected
    assert _fd(tmp_path, line) is expected
