"""`-t` on real configuration trees: exit 0 when good, 42 with file:line when broken, 41 on usage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent.parent / "data" / "bareos-defaultconfigs"


def run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("module", "tree"),
    [("director", "bareos-dir.d"), ("storaged", "bareos-sd.d"), ("filed", "bareos-fd.d")],
)
def test_bareos_default_configuration_passes(module: str, tree: str) -> None:
    result = run(module, "-t", "-c", str(DATA / tree))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_broken_configuration_exits_42_with_file_and_line(tmp_path: Path) -> None:
    conf = tmp_path / "dir.conf"
    conf.write_text('Director {\n  Name = d\n  Password = "x"\n  Maximum Concurent Jobs = 3\n}\n')
    result = run("director", "-t", "-c", str(conf))
    assert result.returncode == 42
    assert f"{conf}:4" in result.stderr


def test_dangling_reference_exits_42(tmp_path: Path) -> None:
    conf = tmp_path / "dir.conf"
    conf.write_text(
        'Director {\n  Name = d\n  Password = "x"\n}\n'
        "Job {\n  Name = j\n  Type = Backup\n  Client = nowhere\n  FileSet = fs\n}\n"
    )
    result = run("director", "-t", "-c", str(conf))
    assert result.returncode == 42
    assert f"{conf}:" in result.stderr
    assert "nowhere" in result.stderr


def test_usage_error_exits_41() -> None:
    assert run("director", "--no-such-flag").returncode == 41
    assert run("storaged", "-d", "lots").returncode == 41


def test_missing_configuration_exits_42(tmp_path: Path) -> None:
    assert run("filed", "-t", "-c", str(tmp_path / "nope.conf")).returncode == 42


ETC = Path(__file__).parent.parent.parent / "etc"


@pytest.mark.parametrize(
    ("module", "tree"),
    [
        ("director", "strongroom-dir.d"),
        ("storaged", "strongroom-sd.d"),
        ("filed", "strongroom-fd.d"),
    ],
)
def test_shipped_sample_trees_pass(module: str, tree: str) -> None:
    result = run(module, "-t", "-c", str(ETC / tree))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("daemon", ["dir", "sd", "fd"])
def test_systemd_units_match_the_daemon_lifecycle(daemon: str) -> None:
    unit = (ETC / "systemd" / f"strongroom-{daemon}.service").read_text()
    assert "Type=notify" in unit
    assert "RestartPreventExitStatus=41 42" in unit
    assert f"strongroom-{daemon} -f -c" in unit
    if daemon == "dir":
        reloads = [line for line in unit.splitlines() if line.startswith("ExecReload=")]
        assert reloads[0].endswith("strongroom-dir -t -c /etc/strongroom/strongroom-dir.d")
        assert "kill -HUP $MAINPID" in reloads[1]
