"""File Daemon self-protection (#13): Allowed Script Dir, Allowed Job Command, Allow Restore = no."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from filed.config import load_client_config
from filed.protection import script_refusal


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    d = tmp_path / "scripts"
    d.mkdir()
    (d / "ok.sh").write_text("#!/bin/sh\n")
    (tmp_path / "elsewhere.sh").write_text("#!/bin/sh\n")
    (d / "escape.sh").symlink_to(tmp_path / "elsewhere.sh")
    return d


def test_without_lists_anything_runs(scripts: Path) -> None:
    assert script_refusal("echo hi; id", (), ()) is None


@pytest.mark.parametrize("command", ["{d}/ok.sh", "{d}/ok.sh --level Full Job-1.2:3"])
def test_programs_inside_the_allowed_dir_run(scripts: Path, command: str) -> None:
    assert script_refusal(command.format(d=scripts), (scripts,), ()) is None


@pytest.mark.parametrize(
    "command",
    [
        "{d}/ok.sh; rm -rf /",
        "{d}/ok.sh && id",
        "{d}/ok.sh $(id)",
        "{d}/ok.sh `id`",
        "{d}/ok.sh | sh",
        "{d}/ok.sh > /etc/passwd",
        "{d}/../elsewhere.sh",
        "{d}/escape.sh",
        "ok.sh",
        "/bin/sh -c id",
        "{d}/ok.sh\nid",
        "'{d}/ok.sh' quoted",
    ],
)
def test_anything_else_is_refused(scripts: Path, command: str) -> None:
    assert script_refusal(command.format(d=scripts), (scripts,), ()) is not None


def test_allowed_job_command_is_an_exact_match(scripts: Path) -> None:
    allowed = ("/usr/sbin/dump-db --all",)
    assert script_refusal("/usr/sbin/dump-db --all", (), allowed) is None
    assert "Allowed Job Command" in (
        script_refusal("/usr/sbin/dump-db --all; id", (), allowed) or ""
    )
    # either list admits a command
    assert script_refusal(f"{scripts}/ok.sh", (scripts,), allowed) is None


def test_the_directives_load(tmp_path: Path) -> None:
    conf = tmp_path / "bareos-fd.conf"
    conf.write_text(
        'Client {\n  Name = c-fd\n  Allowed Script Dir = "/etc/strongroom/scripts"\n'
        '  Allowed Script Dir = "/usr/lib/strongroom"\n  Allowed Job Command = "/usr/sbin/dump-db --all"\n'
        "  Allow Restore = no\n  TLS Enable = no\n}\n"
        'Director {\n  Name = d\n  Password = "x"\n  TLS Enable = no\n}\n'
    )
    loaded = load_client_config(conf)
    client = loaded.config.client
    assert client.allowed_script_dir == (
        Path("/etc/strongroom/scripts"),
        Path("/usr/lib/strongroom"),
    )
    assert client.allowed_job_command == ("/usr/sbin/dump-db --all",)
    assert client.allow_restore is False
    assert not [w for w in loaded.warnings if "Allowed" in str(w)]
    assert os.fspath(client.allowed_script_dir[0]).startswith("/")
