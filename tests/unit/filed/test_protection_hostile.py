"""File Daemon self-protection (#13): Allowed Script Dir, Allowed Job Command, Allow Restore = no."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from filed.config import load_client_config
from filed.protection import job_command_refusal, script_refusal


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    d = tmp_path / "scripts"
    d.mkdir()
    (d / "ok.sh").write_text("#!/bin/sh\n")
    (tmp_path / "elsewhere.sh").write_text("#!/bin/sh\n")
    (d / "escape.sh").symlink_to(tmp_path / "elsewhere.sh")
    return d


def test_without_lists_anything_runs(scripts: Path) -> None:
    assert script_refusal("echo hi; id", ()) is None


@pytest.mark.parametrize("command", ["{d}/ok.sh", "{d}/ok.sh --level Full Job-1.2:3"])
def test_programs_inside_the_allowed_dir_run(scripts: Path, command: str) -> None:
    assert script_refusal(command.format(d=scripts), (scripts,)) is None


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
    assert script_refusal(command.format(d=scripts), (scripts,)) is not None


def test_allowed_job_command_lists_the_job_commands_bareos_names() -> None:
    """Bareos semantics: the job commands the File Daemon accepts; empty allows every one."""
    assert job_command_refusal("restore", ()) is None
    backup_only = ("backup", "Estimate")
    assert job_command_refusal("backup", backup_only) is None
    assert job_command_refusal("estimate", backup_only) is None  # names are case-insensitive
    refusal = job_command_refusal("restore", backup_only)
    assert refusal == (
        "the restore command is not in this client's Allowed Job Command (backup, Estimate)"
    )
    assert job_command_refusal("runscript", backup_only) is not None
    # Bareos's names for the script commands allow client scripts too.
    assert job_command_refusal("runscript", ("backup", "RunBeforeJob")) is None


def test_the_directives_load(tmp_path: Path) -> None:
    conf = tmp_path / "bareos-fd.conf"
    conf.write_text(
        'Client {\n  Name = c-fd\n  Allowed Script Dir = "/etc/strongroom/scripts"\n'
        '  Allowed Script Dir = "/usr/lib/strongroom"\n  Allowed Job Command = "backup"\n'
        "  Allow Restore = no\n  TLS Enable = no\n}\n"
        'Director {\n  Name = d\n  Password = "x"\n  TLS Enable = no\n}\n'
    )
    loaded = load_client_config(conf)
    client = loaded.config.client
    assert client.allowed_script_dir == (
        Path("/etc/strongroom/scripts"),
        Path("/usr/lib/strongroom"),
    )
    assert client.allowed_job_command == ("backup",)
    assert client.allow_restore is False
    assert not [w for w in loaded.warnings if "Allowed" in str(w)]
    assert os.fspath(client.allowed_script_dir[0]).startswith("/")
