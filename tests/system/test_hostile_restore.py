"""Restore safety with the real daemons (#13): nothing is written outside, the rest restores.

A backed-up tree whose directory is swapped for a symlink before the restore, restored to `/` and
to a `where`; a `where` that is a symlink; a `where` others can write to; privileged content (the
setuid bit) stripped at a `where` other than `/`. The crafted-stream cases (a symlink followed by a
file below it, `..`, NUL, 4 KiB names, hardlinks to unrestored indexes) cannot come out of a real
backup and are in tests/unit/filed/test_restore_hostile.py.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.conftest import Installation
from tests.system.test_backup_restore import messages, run, run_job

JOB = "hostile-restore"


@pytest.fixture(scope="module")
def tree(installation: Installation) -> tuple[Installation, Path]:
    src = installation.root / "victim-src"
    docs = src / "home" / "alice" / "docs"
    docs.mkdir(parents=True)
    (docs / "letter.txt").write_text("dear bob\n")
    (src / "home" / "alice" / "notes.txt").write_text("notes\n")
    (src / "bin").mkdir()
    (src / "bin" / "tool").write_text("#!/bin/sh\n")
    os.chmod(src / "bin" / "tool", 0o4755)
    etc = installation.layout.root / "etc" / "strongroom-dir.d"
    (etc / "fileset" / "Victim.conf").write_text(
        f'FileSet {{\n  Name = Victim\n  Include {{\n    File = "{src}"\n  }}\n}}\n'
    )
    (etc / "job" / f"{JOB}.conf").write_text(
        f"Job {{\n  Name = {JOB}\n  JobDefs = DefaultJob\n  FileSet = Victim\n}}\n"
    )
    (reply,) = run(installation, "reload")
    assert "reloaded" in json.dumps(reply), reply
    row = run_job(installation, f"run job={JOB} level=Full yes")
    assert row["jobstatus"] == "T", messages(installation)
    return installation, src


def _restore(
    inst: Installation, where: Path | str, extra: str = ""
) -> tuple[dict[str, object], str]:
    row = run_job(
        inst,
        f'restore client={inst.layout.client} fileset=Victim where="{where}" {extra} '
        "select all done yes",
    )
    return row, messages(inst)


def _plant(base: Path, outside: Path) -> Path:
    """home/alice/docs -> outside, as a local user would plant it."""
    alice = base / "home" / "alice"
    alice.mkdir(parents=True, exist_ok=True)
    if (alice / "docs").is_dir() and not (alice / "docs").is_symlink():
        shutil.rmtree(alice / "docs")
    (alice / "docs").symlink_to(outside)
    return alice


@pytest.fixture
def at_root(tree: tuple[Installation, Path]) -> Iterator[tuple[Installation, Path]]:
    """The backed-up tree itself is restored over (where=/); put it back afterwards."""
    inst, src = tree
    yield inst, src
    docs = src / "home" / "alice" / "docs"
    if docs.is_symlink():
        docs.unlink()
    docs.mkdir(exist_ok=True)
    (docs / "letter.txt").write_text("dear bob\n")
    (src / "home" / "alice" / "notes.txt").write_text("notes\n")


@pytest.mark.parametrize("to_root", [True, False], ids=["where=/", "where"])
def test_a_directory_swapped_for_a_symlink_is_never_followed(
    tree: tuple[Installation, Path],
    at_root: tuple[Installation, Path],
    tmp_path: Path,
    to_root: bool,
) -> None:
    """replace=never keeps the planted symlink, so the walk meets it: the file below is refused."""
    inst, src = tree
    outside = tmp_path / "etc"
    outside.mkdir()
    where = Path("/") if to_root else tmp_path / "r"
    alice = _plant(where / str(src).lstrip("/"), outside)
    (src / "home" / "alice" / "notes.txt").unlink(missing_ok=True)
    row, text = _restore(inst, where, "replace=never")
    assert list(outside.iterdir()) == [], text
    assert (alice / "notes.txt").read_text() == "notes\n"  # the rest restores
    assert (alice / "docs").is_symlink()
    assert row["jobstatus"] == "E", text
    assert "docs is a symlink; refusing to follow it" in text, text


@pytest.mark.parametrize("to_root", [True, False], ids=["where=/", "where"])
def test_a_planted_symlink_is_replaced_not_followed(
    tree: tuple[Installation, Path],
    at_root: tuple[Installation, Path],
    tmp_path: Path,
    to_root: bool,
) -> None:
    """replace=always: the symlink in the way of a directory is replaced by the directory."""
    inst, src = tree
    outside = tmp_path / "etc"
    outside.mkdir()
    where = Path("/") if to_root else tmp_path / "r"
    alice = _plant(where / str(src).lstrip("/"), outside)
    row, text = _restore(inst, where)
    assert list(outside.iterdir()) == [], text
    assert not (alice / "docs").is_symlink()
    assert (alice / "docs" / "letter.txt").read_text() == "dear bob\n"
    assert row["jobstatus"] == "T", text
    if to_root:  # the same client at where=/ restores privileged content verbatim
        assert stat.S_IMODE((src / "bin" / "tool").stat().st_mode) == 0o4755


def test_a_where_that_is_a_symlink_is_refused(
    tree: tuple[Installation, Path], tmp_path: Path
) -> None:
    inst, _src = tree
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "r").symlink_to(outside)
    row, text = _restore(inst, tmp_path / "r")
    assert row["jobstatus"] == "E", text
    assert "restore rejected" in text and "symlink" in text, text
    assert list(outside.iterdir()) == []


def test_a_where_writable_by_others_is_refused(
    tree: tuple[Installation, Path], tmp_path: Path
) -> None:
    inst, _src = tree
    where = tmp_path / "open"
    where.mkdir()
    where.chmod(0o777)
    row, text = _restore(inst, where)
    assert row["jobstatus"] == "E" and "writable by others" in text, text
    assert list(where.iterdir()) == []


def test_setuid_is_stripped_at_a_where_and_the_job_log_says_so(
    tree: tuple[Installation, Path], tmp_path: Path
) -> None:
    inst, src = tree
    where = tmp_path / "plain"
    row, text = _restore(inst, where)
    tool = where / str(src).lstrip("/") / "bin" / "tool"
    assert stat.S_IMODE(tool.stat().st_mode) == 0o755
    assert row["jobstatus"] in ("T", "W"), text
    assert "setuid/setgid bits not restored" in text, text
